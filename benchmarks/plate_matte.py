"""Alpha from Clean Plate: seconds per frame with the separable filters against the former pools.

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.plate_matte --json

Prints one JSON object: per size (832×480 and 128×128 by default), ``seconds_per_frame`` of
``plate_matte`` as it is (running max / cumulative-sum box filters, median of ``--repeats``) and
``reference_seconds_per_frame`` of the former formulation (one (4r+1)² ``max_pool2d`` for the far
region, ``avg_pool2d`` boxes; ``benchmarks/references/plate_matte_filters.py``, one run), their ratio, and
``max_difference`` between the two mattes. Inputs: ``--frames`` frames of a synthetic scene
(textured noisy plate, object, shadow), node defaults. Target: ≤ 0.5 s per frame at 832×480 on the
2-core box. No ComfyUI needed. Writes ``benchmarks/results/plate_matte.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "tests"))  # the former formulation lives with the tests
RESULTS = ROOT / "benchmarks" / "results" / "plate_matte.json"
SIZES = ("832x480", "128x128")
TARGET_S = 0.5  # per frame at 832×480 on the 2-core box (issue 27)
log = logging.getLogger(__name__)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=list(SIZES), help="WIDTHxHEIGHT (default: 832x480 128x128)")
    p.add_argument("--frames", type=int, default=4, help="frames per run (default 4)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of the new filters (median; default 3)")
    p.add_argument("--no-reference", action="store_true", help="skip the former formulation (slow at 832×480)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    return p.parse_args()


def _timed(fn) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    alpha, _ = fn()
    return time.perf_counter() - start, alpha


def measure(width: int, height: int, args: argparse.Namespace) -> dict:
    from benchmarks.references.plate_matte_filters import old_filters, scene
    from omnimatte_core import plate_matte

    video, plate, obj = scene(args.frames, height, width)
    run = lambda: plate_matte.plate_matte(video, plate, obj)  # noqa: E731  node defaults
    run()  # warm-up
    timings, alpha = zip(*(_timed(run) for _ in range(args.repeats)))
    row = {"size": f"{width}x{height}", "frames": args.frames,
           "seconds_per_frame": round(statistics.median(timings) / args.frames, 4)}
    if not args.no_reference:
        with old_filters(plate_matte):
            seconds, reference = _timed(run)
        row.update(reference_seconds_per_frame=round(seconds / args.frames, 4),
                   speedup=round(seconds / statistics.median(timings), 1),
                   max_difference=float((alpha[0] - reference).abs().max()))
    log.info("%s", row)
    return row


def run(args: argparse.Namespace) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [measure(*map(int, size.lower().split("x")), args) for size in args.sizes]
    full = next((r for r in rows if r["size"] == "832x480"), None)
    return {"sizes": rows, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "settings": "node defaults (effect_radius 48, edge_radius 2, temporal_frames 1)",
            "target_s_per_frame_832x480": TARGET_S,
            "meets_target": None if full is None else full["seconds_per_frame"] <= TARGET_S}


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    result = run(args)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
