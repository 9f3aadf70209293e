"""The toy-world demo of the headless runner: ``bash scripts/run.sh`` with no clip given.

Runs ``workflows/toy_world_demo.json`` (the same node chain as real runs, with the embedded toy
models and a bundled held-out clip), writes every layer under ``OUT/<clip>-object/<layer>/``,
then a contact sheet PNG and a metrics JSON against the clip's ground truth (docs/toy_world.md).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from omnimatte_eval.sheets import contact_sheet, evaluate
from omnimatte_host import comfy_host

log = logging.getLogger("omnimatte.toy_demo")
DEMO_DIR = comfy_host.PACK_DIR / "toy_world" / "demo"


def demo_clips() -> list[str]:
    return sorted(p.name for p in DEMO_DIR.glob("*.safetensors")) if DEMO_DIR.is_dir() else []


def run_folder(out: Path, stem: str) -> Path:
    """``OUT/<clip>-object``, or ``-2``, ``-3`` … when an earlier run is there (runs never mix)."""
    folder, n = out / f"{stem}-object", 2
    while folder.exists():
        folder, n = out / f"{stem}-object-{n}", n + 1
    return folder


def build_demo_prompt(args: argparse.Namespace, clip: str, folder_name: str) -> dict:
    from omnimatte_run.prompts import SETTINGS, WORKFLOWS_DIR, set_all, workflow_prompt

    prompt = workflow_prompt(WORKFLOWS_DIR / "toy_world_demo.json")
    set_all(prompt, "LoadOmnimatteToyClip", "clip", clip)
    for node in prompt.values():
        if node["class_type"] == "SaveImage":
            layer = node["inputs"]["filename_prefix"].split("/")[-1]
            node["inputs"]["filename_prefix"] = f"{folder_name}/{layer}/{layer}"
    for name, node_types in SETTINGS.items():
        if name not in ("width", "height"):  # the toy models know 128×128 only
            for node_type in node_types:
                set_all(prompt, node_type, name, getattr(args, name))
    return prompt


def run_demo(args: argparse.Namespace) -> dict:
    from omnimatte_core.toy_clip import load_toy_clip
    from omnimatte_run.graph_run import RunError, execute

    clips = demo_clips()
    if not clips:
        raise RunError(f"no toy-world demo clip in {DEMO_DIR}; the pack ships them (re-clone it), or rebuild with "
                       "python -m training.toy_world --resume")
    clip = args.toy_clip or clips[0]
    if not clip.endswith(".safetensors"):
        clip += ".safetensors"
    if clip not in clips:
        raise RunError(f"--toy-clip {args.toy_clip}: no such demo clip; choose one of {', '.join(clips)}")
    folder = run_folder(args.out, Path(clip).stem)
    log.info("toy-world demo: %s with the embedded TOY models (128×128, procedural); real footage needs Casper "
             "and trained experts", clip)
    args.out.mkdir(parents=True, exist_ok=True)
    result = execute(build_demo_prompt(args, clip, folder.name), args.out)
    toy = load_toy_clip(DEMO_DIR / clip)
    metrics, layers = evaluate(toy, folder)
    metrics_path, sheet_path = folder / "metrics.json", folder / "contact_sheet.png"
    metrics_path.write_text(json.dumps({"clip": clip, "toy_models": True, **metrics,
                                        "seconds": result["seconds"]}, indent=1) + "\n")
    contact_sheet(toy, layers).save(sheet_path)
    log.info("layers in %s; contact sheet %s; metrics %s", folder, sheet_path, metrics_path)
    return {**result, "folder": str(folder), "contact_sheet": str(sheet_path), "metrics": metrics}
