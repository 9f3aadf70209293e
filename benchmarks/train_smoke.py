"""Benchmark: a short expert training at Casper's size: seconds per step and peak memory (issue 27).

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.train_smoke --preset wan1.3b --json   # GPU
    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.train_smoke --json                    # CPU, tiny

Random models at a ``benchmarks.decompose`` preset's size (written as it writes them: seeded, Wan 2.1
I2V at 1.3B for ``wan1.3b``) are trained by ``python -m training.train`` as docs/training.md runs it
(expert defaults: Effect rank 128 on the last ⌈blocks/3⌉ blocks, Quality rank 64 on all; gradient
checkpointing; bf16 autocast on CUDA), ``--steps`` optimizer steps per run, no validation, procedural
data with ``--pool 1``: one clip rendered and VAE-encoded once (σ and noise fresh every step), so the
steps are the training's and not the CPU renderer's; ``--pool-cache`` lets the later runs read that
clip. CLIP-H features are ``random:0`` (the smoke's subject is the expert step). ``--runs``: each
``ROLE`` runs plainly, ``torchrun:ROLE`` through ``torchrun --nproc_per_node=1`` (as ``python -m
torch.distributed.run``, the launcher of the multi-GPU recipe). Per run, from the run's loss.jsonl:
the first step's seconds (it encodes the pool clip), the median of the others, the peak CUDA memory
(GPU) and peak RSS of the training process, the first and last loss; and the command's wall seconds.

The wan1.3b preset trains on 21 frames at 480×832 (6 latent frames, 9,360 tokens per row) so that the
GPU check fits its 8 minutes; ``--frames 81`` is the recipe's clip (docs/training.md estimates ≈ 8 s
per Effect step there).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("benchmarks.train_smoke")
ROOT = Path(__file__).resolve().parents[1]
RUNS = ("effect", "quality", "torchrun:effect")


@dataclass(frozen=True)
class Preset:
    models: str  # a benchmarks.decompose preset
    height: int
    width: int
    frames: int
    threads: int | None  # torch threads of each training process (None: torch's default)


PRESETS = {
    "wan1.3b": Preset("wan1.3b", 480, 832, 21, None),
    "cpu": Preset("cpu", 32, 48, 5, 1),  # the tests' tiny training shape, one thread
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=PRESETS, default="cpu")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    p.add_argument("--frames", type=int, default=None, help="clip frames, 4n+1 (default: the preset's)")
    p.add_argument("--runs", nargs="+", default=list(RUNS), help="ROLE (plain) or torchrun:ROLE, in order")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    for run in args.runs:
        if run.removeprefix("torchrun:") not in ("effect", "quality"):
            p.error(f"--runs {run}: give effect, quality, torchrun:effect or torchrun:quality")
    return args


def train_argv(files: dict[str, Path], i2v: bool, role: str, out: Path, shape: tuple[int, int, int], steps: int,
               pool_cache: Path, threads: int | None) -> list[str]:
    """training.train's arguments for one smoke run (docs/training.md's flags, defaults elsewhere)."""
    height, width, frames = shape
    argv = ["--role", role, "--model", str(files["unet"]), "--vae", str(files["vae"]),
            "--text-embeds", str(files["text"]), "--output", str(out), "--height", str(height), "--width", str(width),
            "--frames", str(frames), "--iterations", str(steps), "--checkpoint-every", str(steps),
            "--val-every", "0", "--pool", "1", "--pool-cache", str(pool_cache), "--no-progress"]
    if i2v:
        argv += ["--clip-vision", "random:0"]
    if threads:
        argv += ["--threads", str(threads)]
    return argv


def launcher(run: str) -> list[str]:
    if run.startswith("torchrun:"):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                "-m", "training.train"]
    return [sys.executable, "-m", "training.train"]


def summarise(out: Path, role: str) -> dict:
    """Figures of one finished run from its loss.jsonl (seconds and peaks as training.train wrote them)."""
    lines = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    seconds = [line["seconds"] for line in lines]
    row = {"steps": len(lines), "first_step_s": seconds[0],
           "step_s": round(statistics.median(seconds[1:]), 4) if len(seconds) > 1 else None,
           "loss_first": round(lines[0]["loss"], 5), "loss_last": round(lines[-1]["loss"], 5),
           "peak_rss_mb": lines[-1]["peak_rss_mb"],
           "expert_written": (out / f"{role}_expert.safetensors").is_file()}
    if "peak_cuda_mb" in lines[-1]:
        row["peak_cuda_mb"] = lines[-1]["peak_cuda_mb"]
    return row


def run_one(run: str, argv: list[str], out: Path) -> dict:
    """One training command in its own process → its figures, or an ``error`` with the end of its stderr."""
    role = run.removeprefix("torchrun:")
    command = [*launcher(run), *argv]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path})
    record = {"command": " ".join(["python", *command[1:]]), "wall_s": round(time.perf_counter() - started, 1)}
    if done.returncode != 0 or not (out / "loss.jsonl").is_file():
        tail = done.stderr.strip().splitlines()[-5:]
        return {**record, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    return {**record, **summarise(out, role)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO, format="%(message)s")
    from omnimatte_host import comfy_host

    comfy_host.import_comfy(threads=None)
    import torch

    from benchmarks.decompose import PRESETS as MODEL_PRESETS
    from benchmarks.decompose import model_files, write_models

    preset = PRESETS[args.preset]
    cfg = MODEL_PRESETS[preset.models]
    shape = (preset.height, preset.width, args.frames or preset.frames)
    report = {"preset": args.preset, "shape": {"dim": cfg["dim"], "blocks": cfg["blocks"], "i2v": cfg["i2v"],
                                               "height": shape[0], "width": shape[1], "frames": shape[2]},
              "steps": args.steps, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="omnimatte-train-smoke-") as folder:
        models = Path(folder) / "models"
        files = model_files(write_models(cfg, models), models)
        for run in args.runs:
            out = Path(folder) / run.replace(":", "_")
            log.info("run %s", run)
            train = train_argv(files, cfg["i2v"], run.removeprefix("torchrun:"), out, shape, args.steps,
                               Path(folder) / "pool", preset.threads)
            report["runs"][run] = run_one(run, train, out)
    report.update(device=torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                  torch=torch.__version__)
    print(json.dumps(report, indent=None if args.json else 1))
    return 1 if any("error" in r for r in report["runs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
