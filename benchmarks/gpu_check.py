"""The GPU check (issue 27): the pack's own benchmarks at Casper's size, one command, one JSON.

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.gpu_check --json                # on a GPU
    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.gpu_check --dry-run --json      # CPU, tiny presets

Each stage is another benchmark module run in its own process (``--json``), so one stage's
memory peak or failure never touches the next; a stage that fails or runs past its timeout is
recorded with its error and the rest go on. ``--only`` picks stages; ``--out`` names the JSON
(default ``docs/gpu_check_<date>.json`` on a GPU, ``benchmarks/results/`` for a dry run). The
default set (the stages not yet measured on a GPU and the 4-step headline) is sized to end within 8
minutes on one H200 and ``--budget`` (480 s) holds it there; ``--all`` or ``--only`` runs the others
(measured on 2026-12-04, or, at 50 steps, ≈ 400 s alone). docs/performance.md has the estimates.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("benchmarks.gpu_check")
ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stage:
    name: str
    module: str
    args: tuple[str, ...]  # on a GPU
    dry_args: tuple[str, ...]  # the CPU dry run: the same module on its tiny preset
    timeout_s: int
    default: bool = True  # in the set a plain run runs (the 8-minute one); the others with --only or --all


# Timeouts of the default set add up to ≤ DEFAULT_BUDGET_S (tests/test_gpu_check.py checks it). Each is
# about 1.25× the stage's expected seconds on one H200: measured ones from docs/gpu_check_2026-12-04.json,
# estimated ones worked out in docs/performance.md ("The GPU check").
DEFAULT_BUDGET_S = 480
DRY_RUN_TIMEOUT_S = 900  # per stage on a CPU: the GPU timeouts do not apply (a busy 2-core box takes minutes)
STAGES = (
    Stage("decompose_4_steps", "benchmarks.decompose", ("--preset", "wan1.3b", "--steps", "4"),
          ("--preset", "cpu", "--steps", "2"), 100),  # measured 79.6 s
    Stage("long_video_480x832", "benchmarks.long_video", ("--preset", "wan1.3b"), ("--preset", "cpu"),
          110),  # estimated ≈ 90 s: 81 and 161 frames
    Stage("train_smoke", "benchmarks.train_smoke", ("--preset", "wan1.3b", "--runs", "effect", "quality"),
          ("--preset", "cpu", "--runs", "effect", "quality"), 160),  # estimated ≤ 136 s
    Stage("train_smoke_torchrun", "benchmarks.train_smoke", ("--preset", "wan1.3b", "--runs", "torchrun:effect"),
          ("--preset", "cpu", "--runs", "torchrun:effect"), 105),  # estimated ≤ 91 s
    Stage("decompose_2_steps", "benchmarks.decompose", ("--preset", "wan1.3b", "--steps", "2"),
          ("--preset", "cpu", "--steps", "1"), 85, default=False),  # measured 65.6 s
    Stage("branch_forward", "benchmarks.branch_forward", ("--preset", "wan1.3b"), ("--preset", "cpu", "--repeats", "1"),
          55, default=False),  # measured 40.2 s
    Stage("decompose_4_steps_fp8", "benchmarks.decompose",
          ("--preset", "wan1.3b", "--steps", "4", "--weight-dtype", "fp8_e4m3fn"),
          ("--preset", "cpu", "--steps", "1", "--weight-dtype", "fp8_e4m3fn"), 105, default=False),  # measured 83.9 s
    Stage("decompose_50_steps", "benchmarks.decompose", ("--preset", "wan1.3b", "--steps", "50"),
          ("--preset", "cpu", "--steps", "3"), 540, default=False),  # estimated ≈ 400 s: alone in one call
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="every stage on its CPU preset (checks the plumbing)")
    p.add_argument("--only", nargs="+", choices=[s.name for s in STAGES], help="run these stages only")
    p.add_argument("--all", action="store_true", help="every stage, not only the default set")
    p.add_argument("--budget", type=float, default=None,
                   help=f"seconds for the whole run (default {DEFAULT_BUDGET_S} on a GPU, none for a dry run): a "
                        "stage's timeout is cut to what is left, and a stage with nothing left is not started")
    p.add_argument("--out", type=Path, default=None, help="where the JSON goes")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    return p.parse_args(argv)


def last_json_object(text: str) -> dict | None:
    """The last line of ``text`` that parses as a JSON object (the stage's ``--json`` output)."""
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def run_stage(stage: Stage, dry_run: bool, timeout_s: float | None = None) -> dict:
    """One benchmark in its own process group → {"command", "seconds", "result"} and/or an "error".

    On a timeout the whole group is killed (a stage's own children too: long_video's cases, the training
    runs and torchrun's workers), and a JSON object it printed before is kept."""
    args = stage.dry_args if dry_run else stage.args
    command = [sys.executable, "-m", stage.module, *args, "--json"]
    shown = " ".join(["python", "-m", stage.module, *args, "--json"])
    if timeout_s is None:
        timeout_s = DRY_RUN_TIMEOUT_S if dry_run else stage.timeout_s
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        error = None if proc.returncode == 0 else f"exit {proc.returncode}: "
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        error = f"ran past its {timeout_s:.0f} s timeout"
    record = {"command": shown, "seconds": round(time.perf_counter() - started, 1)}
    result = last_json_object(stdout)
    if result is not None:
        record["result"] = result
    if error is None and result is None:
        error = "printed no JSON object: "
    if error is not None:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        record["error"] = error + (" | ".join(tail) if error.endswith(": ") else "")
    return record


def environment() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu",
            "cuda": torch.version.cuda if cuda else None,
            "date": datetime.date.today().isoformat()}


def chosen(args: argparse.Namespace) -> list[Stage]:
    if args.only:
        return [s for s in STAGES if s.name in args.only]
    return [s for s in STAGES if s.default or args.all]


def run(args: argparse.Namespace) -> dict:
    stages = chosen(args)
    budget = args.budget if args.budget is not None else None if args.dry_run else DEFAULT_BUDGET_S
    report = {"dry_run": args.dry_run, "environment": environment(), "budget_s": budget, "stages": {}}
    out = args.out or (ROOT / "benchmarks" / "results" / "gpu_check_dry_run.json" if args.dry_run
                       else ROOT / "docs" / f"gpu_check_{report['environment']['date']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for stage in stages:
        left = None if budget is None else budget - (time.perf_counter() - started)
        if left is not None and left < 1:
            report.setdefault("not_run", {})[stage.name] = f"the {budget:.0f} s budget was spent"
            continue
        log.info("stage %s", stage.name)
        timeout = DRY_RUN_TIMEOUT_S if args.dry_run else stage.timeout_s
        timeout = timeout if left is None else min(timeout, left)
        report["stages"][stage.name] = run_stage(stage, args.dry_run, timeout)
        out.write_text(json.dumps(report, indent=1) + "\n")  # after each stage: a lease cut short keeps the rest
    report["seconds"] = round(time.perf_counter() - started, 1)
    out.write_text(json.dumps(report, indent=1) + "\n")
    report["written_to"] = str(out)
    return report


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    report = run(args)
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
