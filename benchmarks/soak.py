"""Soak: the same workflow run N times through one real ComfyUI server; does its memory keep growing?

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.soak --json

Starts ``main.py --cpu`` with this pack, posts a workflow to ``/prompt`` ``--runs`` times: either
``toy_world_demo`` (the embedded toy world on its bundled clip) or ``decompose_layers`` (the real
workflow, switched to the toy models, on 17 frames of ``../shared/data`` boys-beach at 640×384,
through Video Frames at Working Size and Save Omnimatte Layers), with a new sampler seed each
time (so the sampler, decode and saves really run again; loaders stay cached as they would for a
user), waits for each in ``/history``, and reads the server's RSS after every run. The goal
(docs/performance.md): RSS after the last run within 5 % of RSS after run 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import psutil

from omnimatte_host import comfy_host
from omnimatte_workflows import workflow_format as wf
from omnimatte_host.comfy_server import ComfyServer

log = logging.getLogger("benchmarks.soak")
API_DIR = comfy_host.PACK_DIR / "tests" / "workflows_api"
WORKFLOWS = ("toy_world_demo", "decompose_layers")
GOAL = 0.05
CLIP_FRAMES = 17


def run_once(server: ComfyServer, prompt: dict, timeout_s: float = 600) -> float:
    """Post ``prompt``, wait for success; → seconds."""
    started = time.monotonic()
    status, body = server.post_json("/prompt", {"prompt": prompt, "client_id": "omnimatte-soak"})
    if status != 200:
        raise RuntimeError(f"/prompt answered {status}: {body}")
    prompt_id = body["prompt_id"]
    while time.monotonic() - started < timeout_s:
        entry = server.get_json(f"/history/{prompt_id}").get(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            if entry["status"]["status_str"] != "success":
                raise RuntimeError(f"run failed: {entry['status']}\n{server.log_tail()}")
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"run did not finish in {timeout_s} s\n{server.log_tail()}")


def workflow_prompt(name: str, input_dir: Path) -> dict:
    """The API prompt; for decompose_layers, switched to the toy models with a real clip in ``input_dir``."""
    prompt = json.loads((API_DIR / f"{name}.json").read_text())
    if name == "toy_world_demo":
        return prompt
    from omnimatte_eval.clips import cut_clip, shared_clips
    from omnimatte_run.prompts import toy_models

    clip = shared_clips() / "boys-beach"
    input_dir.mkdir(parents=True, exist_ok=True)
    for title, source in (("Input video", "input_video.mp4"), ("Object mask video", "mask_00.mp4")):
        cut_clip(clip / source, input_dir / source, CLIP_FRAMES)
        for key in wf.nodes_titled(prompt, title):
            prompt[key]["inputs"]["file"] = source
    prompt = toy_models(prompt)
    for node in prompt.values():
        if node["class_type"] in ("OmnimatteConditioning", "OmnimatteVideoFrames"):
            node["inputs"].update(width=128, height=80)
        if node["class_type"] == "BranchWanSampler":
            node["inputs"]["steps"] = 4
    return prompt


def soak(name: str, runs: int) -> dict:
    comfy = comfy_host.find_comfyui()
    if comfy is None:
        raise SystemExit(comfy_host.NO_HOST_MESSAGE)
    with tempfile.TemporaryDirectory(prefix="omnimatte-soak-") as base:
        prompt = workflow_prompt(name, Path(base) / "input")
        sampler = next(k for k, n in prompt.items() if n["class_type"] == "BranchWanSampler")
        server = ComfyServer(comfy, comfy_host.PACK_DIR, Path(base)).start()
        try:
            process = psutil.Process(server.process.pid)
            rss_mb, seconds = [], []
            for run in range(runs):
                prompt[sampler]["inputs"]["seed"] = 1000 + run
                seconds.append(round(run_once(server, prompt), 2))
                rss_mb.append(round(process.memory_info().rss / 2**20, 1))
                log.info("run %d: %.1f s, RSS %.1f MB", run + 1, seconds[-1], rss_mb[-1])
        finally:
            server.stop()
    growth = (rss_mb[-1] - rss_mb[1]) / rss_mb[1]
    return {"workflow": name, "runs": runs, "rss_mb": rss_mb, "seconds": seconds,
            "growth_after_run_2": round(growth, 4), "goal": GOAL, "met": abs(growth) <= GOAL,
            "host": comfy_host.comfyui_version(comfy)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--workflow", choices=WORKFLOWS, action="append",
                        help="which workflow(s) to soak (default: both)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.runs < 3:
        parser.error("--runs must be at least 3 (growth is measured from run 2)")
    report = {"cases": [soak(name, args.runs) for name in args.workflow or WORKFLOWS]}
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
