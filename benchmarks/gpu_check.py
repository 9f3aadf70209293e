"""The GPU check (issue 27): the pack's own benchmarks at Casper's size, one command, one JSON.

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.gpu_check --json                # on a GPU
    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.gpu_check --dry-run --json      # CPU, tiny presets

Each stage is another benchmark module run in its own process (``--json``), so one stage's
memory peak or failure never touches the next; a stage that fails or runs past its timeout is
recorded with its error and the rest go on. ``--only`` picks stages; ``--out`` names the JSON
(default ``docs/gpu_check_<date>.json`` on a GPU, ``benchmarks/results/`` for a dry run). The
whole default set is sized to end within 8 minutes on one H200 (docs/performance.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
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


STAGES = (
    Stage("decompose_4_steps", "benchmarks.decompose", ("--preset", "wan1.3b", "--steps", "4"),
          ("--preset", "cpu", "--steps", "2"), 150),
    Stage("decompose_2_steps", "benchmarks.decompose", ("--preset", "wan1.3b", "--steps", "2"),
          ("--preset", "cpu", "--steps", "1"), 120),
    Stage("branch_forward", "benchmarks.branch_forward", ("--preset", "wan1.3b"), ("--preset", "cpu", "--repeats", "1"),
          90),
    Stage("decompose_4_steps_fp8", "benchmarks.decompose",
          ("--preset", "wan1.3b", "--steps", "4", "--weight-dtype", "fp8_e4m3fn"),
          ("--preset", "cpu", "--steps", "1", "--weight-dtype", "fp8_e4m3fn"), 150),
    Stage("decompose_50_steps", "benchmarks.decompose", ("--preset", "wan1.3b", "--steps", "50"),
          ("--preset", "cpu", "--steps", "3"), 240),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="every stage on its CPU preset (checks the plumbing)")
    p.add_argument("--only", nargs="+", choices=[s.name for s in STAGES], help="run these stages only")
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


def run_stage(stage: Stage, dry_run: bool) -> dict:
    """One benchmark in its own process → {"command", "seconds", "result"} or an "error"."""
    args = stage.dry_args if dry_run else stage.args
    command = [sys.executable, "-m", stage.module, *args, "--json"]
    shown = " ".join(["python", "-m", stage.module, *args, "--json"])
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=stage.timeout_s)
    except subprocess.TimeoutExpired:
        return {"command": shown, "seconds": round(time.perf_counter() - started, 1),
                "error": f"ran past its {stage.timeout_s} s timeout"}
    record = {"command": shown, "seconds": round(time.perf_counter() - started, 1)}
    result = last_json_object(done.stdout)
    if done.returncode != 0 or result is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        return {**record, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    return {**record, "result": result}


def environment() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {"torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else "cpu",
            "cuda": torch.version.cuda if cuda else None,
            "date": datetime.date.today().isoformat()}


def run(args: argparse.Namespace) -> dict:
    stages = [s for s in STAGES if not args.only or s.name in args.only]
    report = {"dry_run": args.dry_run, "environment": environment(), "stages": {}}
    out = args.out or (ROOT / "benchmarks" / "results" / "gpu_check_dry_run.json" if args.dry_run
                       else ROOT / "docs" / f"gpu_check_{report['environment']['date']}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    for stage in stages:
        log.info("stage %s", stage.name)
        report["stages"][stage.name] = run_stage(stage, args.dry_run)
        out.write_text(json.dumps(report, indent=1) + "\n")  # after each stage: a lease cut short keeps the rest
    report["written_to"] = str(out)
    return report


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    report = run(args)
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
