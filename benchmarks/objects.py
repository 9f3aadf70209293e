"""Several objects in one run, on held-out toy-world scenes with two shadowed objects (docs/toy_world.md).

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.objects --json

Prints one JSON object:
- ``scenes``: per scene and in ``mean``, each object's alpha MAE on its own body
  (``object_k_mae_object``), on its own shadow (``…_mae_shadow``) and on the other object and its
  shadow (``…_leak``, ground truth 0 there), the clean plate's PSNR where the objects were and
  outside, and the re-composite PSNR of every layer over the plate (``CompositeLayerStack``)
  against the input where the layers do not overlap;
- ``pairs``: seconds per decomposition (nodes end to end) batched and sequential, their ratio,
  and the largest difference between the two modes' alphas (they draw the same noise).
Writes ``benchmarks/results/objects.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "objects.json"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=3, help="held-out two-object scenes (default 3, as the tests)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    return p.parse_args()


def run(args: argparse.Namespace) -> dict:
    from omnimatte_host import comfy_host
    from omnimatte_eval import toy_eval
    from training.toy_data import two_object_scenes

    comfy_host.import_comfy(threads=args.threads)
    comfy_host.load_nodes_with_pack()
    models = toy_eval.load_toy_models()
    rows, seconds, differences = [], {"batched": [], "sequential": []}, []
    for scene in two_object_scenes(args.scenes):
        results = {}
        for mode in ("batched", "sequential"):
            start = time.perf_counter()
            results[mode] = toy_eval.decompose_objects(models, scene, pairs=mode)
            seconds[mode].append(time.perf_counter() - start)
        differences.append(float((results["batched"]["layers"].alphas - results["sequential"]["layers"].alphas)
                                 .abs().max()))
        rows.append({"scene": scene.index, **toy_eval.measure_objects(scene, results["batched"])})
    mean = toy_eval.mean_metrics([{k: v for k, v in r.items() if k != "scene"} for r in rows])
    batched, sequential = (sum(seconds[m]) / len(seconds[m]) for m in ("batched", "sequential"))
    return {"scenes": rows, "mean": mean,
            "pairs": {"batched_s": round(batched, 2), "sequential_s": round(sequential, 2),
                      "sequential_over_batched": round(sequential / batched, 3),
                      "max_alpha_difference": max(differences)}}


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    result = run(args)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
