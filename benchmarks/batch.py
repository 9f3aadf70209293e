"""Batches: seconds per clip with ``run.sh --batch`` (models loaded once) against one ``run.sh`` process per
clip, and clips per minute with 1 and 2 Ray workers (``--ray --workers N``), on the toy models.

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.batch --json

Six clips (9, 13 and 17 frames of animator-draw and of boys-beach, 640×384, cut from ``../shared/data``)
go through ``workflows/decompose_layers.json`` with ``--toy`` (the embedded toy models at 128×128),
``--steps 4 --threads 1``: as six separate ``run.sh`` processes, as one ``--batch``, and (when Ray is
installed) as ``--batch --ray`` on a local cluster with 1 and then 2 CPU workers of one thread each. The
first ratio is what loading ComfyUI and the models once saves; with the toy models that is mostly
ComfyUI's start-up, with the real 1.3B transformer and umt5 encoder it is far more. It is given in
wall-clock seconds and in CPU seconds (user + system of the command's processes, from
``getrusage``): on a machine shared with other jobs the wall clock follows their load, the CPU
seconds much less. Clips per minute count the whole command (Ray's start and each worker's ComfyUI
load included); the per-clip wall and CPU seconds come from each run's batch_report.json. On a CPU
host everything here is CPU-bound; the JSON records the host's cores and load average before and
after. Several GPUs are not measured here (a worker per GPU needs a machine that has them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from omnimatte_eval.clips import cut_clip, shared_clips
from omnimatte_host.comfy_host import PACK_DIR

RUN_SH = PACK_DIR / "scripts" / "run.sh"
SOURCES = ("animator-draw", "boys-beach")
LENGTHS = (9, 13, 17)
SETTINGS = ("--toy", "--steps", "4", "--threads", "1")


def make_clips(folder: Path) -> list[Path]:
    """Six clip folders in the batch layout (input_video.mp4, mask_00.mp4, prompt.json)."""
    clips = []
    for source in SOURCES:
        for frames in LENGTHS:
            clip = folder / f"{source}-{frames}"
            for stem in ("input_video", "mask_00"):
                cut_clip(shared_clips() / source / f"{stem}.mp4", clip / f"{stem}.mp4", frames)
            shutil.copy(shared_clips() / source / "prompt.json", clip / "prompt.json")
            clips.append(clip)
    return clips


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str]) -> tuple[float, float]:
    """→ (wall seconds, CPU seconds of the finished command's processes)."""
    started, cpu = time.monotonic(), cpu_of_children()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.monotonic() - started, cpu_of_children() - cpu


def one_process_per_clip(clips: list[Path], out: Path) -> tuple[float, float]:
    runs = [timed(["bash", str(RUN_SH), "--video", str(c / "input_video.mp4"), "--mask", str(c / "mask_00.mp4"),
                   "--out", str(out / c.name), *SETTINGS]) for c in clips]
    return sum(wall for wall, _ in runs), sum(cpu for _, cpu in runs)


def one_batch(batch_dir: Path, out: Path, *extra: str) -> tuple[float, float]:
    return timed(["bash", str(RUN_SH), "--batch", str(batch_dir), "--out", str(out), *SETTINGS, *extra])


def clip_sums(out: Path) -> dict:
    """The clips' own wall and CPU seconds from ``out``'s batch report (start-up and Ray excluded)."""
    clips = json.loads((out / "batch_report.json").read_text())["clips"]
    return {"clip_seconds_sum": round(sum(c["seconds"] or 0 for c in clips), 1),
            "clip_cpu_seconds_sum": round(sum(c["cpu_seconds"] or 0 for c in clips), 1)}


def per_clip(wall: float, cpu: float, clips: int) -> dict:
    return {"seconds": round(wall, 1), "seconds_per_clip": round(wall / clips, 2), "cpu_seconds": round(cpu, 1),
            "cpu_seconds_per_clip": round(cpu / clips, 2)}


def on_ray(batch_dir: Path, base: Path, clips: int) -> dict:
    """Clips per minute with 1 and 2 workers (one thread each)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return {"unmeasured": 'Ray is not installed ("$OMNIMATTE_PY" -m pip install "ray[default]")'}
    result = {}
    for workers in (1, 2):
        out = base / f"ray-{workers}"
        seconds, _ = one_batch(batch_dir, out, "--ray", "--workers", str(workers))  # (workers are not its children)
        result[f"workers_{workers}"] = {"seconds": round(seconds, 1), **clip_sums(out),
                                        "clips_per_minute": round(60 * clips / seconds, 2), "load_after": host()}
    one, two = (result[f"workers_{n}"]["clips_per_minute"] for n in (1, 2))
    result["ratio_2_over_1"] = round(two / one, 2)
    return result


def host() -> dict:
    return {"cpus": os.cpu_count(), "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0]}


def measure() -> dict:
    with tempfile.TemporaryDirectory(prefix="omnimatte-batch-bench-") as base:
        base = Path(base)
        clips = make_clips(base / "clips")
        result = {"clips": len(clips), "frames": [int(c.name.rsplit("-", 1)[1]) for c in clips],
                  "source_size": "640x384", "settings": " ".join(SETTINGS), "host_before": host()}
        separate = one_process_per_clip(clips, base / "separate")
        load_after_separate = host()
        batched = one_batch(base / "clips", base / "batched")
        result["one_process_per_clip"] = {**per_clip(*separate, len(clips)), "load_after": load_after_separate}
        result["batch"] = {**per_clip(*batched, len(clips)), **clip_sums(base / "batched"), "load_after": host()}
        result["per_clip_ratio"] = round(separate[0] / batched[0], 2)
        result["per_clip_cpu_ratio"] = round(separate[1] / batched[1], 2)
        result["ray"] = on_ray(base / "clips", base, len(clips))
        result["host_after"] = host()
    result["gpus"] = "unmeasured: no GPU on the machine that ran this"
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    result = measure()
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['clips']} clips: one process each {result['one_process_per_clip']['seconds_per_clip']} s/clip, "
              f"--batch {result['batch']['seconds_per_clip']} s/clip ({result['per_clip_ratio']}x wall, "
              f"{result['per_clip_cpu_ratio']}x CPU); "
              f"ray: {result['ray']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
