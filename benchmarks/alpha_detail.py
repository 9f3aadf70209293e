"""Where the experts' alpha goes wrong, on the toy table's held-out clips (issue 22, docs/toy_world.md).

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.alpha_detail --json

The toy table gives one MAE per region; it cannot tell a matte that is too faint from one that is blurred
or misplaced, and each asks for a different fix (a larger shadow weight, a base that draws detail, more
data). Per world and method (``dual``, ``quality_only``, ``effect_only`` at τ 0.5, and ``vae_ceiling``),
``omnimatte_core.metrics.alpha_detail``: the alpha's mean beside the truth's and its MAE in the object's
interior, the object's edge band (3 px) and the shadow. Beside them ``dual_seed_spread``: the mean
|α(seed 43) − α(seed 44)| of the dual run per region, the sampling noise in the error. Writes
``benchmarks/results/alpha_detail_<world>.png``: the middle frame of the first clips, columns ground truth,
dual, Quality only, Effect only, VAE ceiling, input. ``--world train`` measures the toy world's first
training clips instead (how well the experts fit what they were trained on); ``--shift`` the sampler's shift.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METHODS = ("dual", "quality_only", "effect_only")
PICTURE_CLIPS = 3
SPREAD_SEEDS = (43, 44)


def parse_args() -> argparse.Namespace:
    from benchmarks.toy_table import parse_checked, run_parser

    p = run_parser(__doc__)
    p.add_argument("--world", choices=("toy", "second", "both", "train"), default="both",
                   help="held-out clips of a world, or train: the toy world's first training clips (the fit)")
    p.add_argument("--shift", type=float, default=5.0, help="the sampler's shift (the toy workflow's 5)")
    return parse_checked(p)


def method_alphas(models, clip, steps: int) -> dict:
    """The alphas [N, H, W] of each of METHODS (seed 43), the dual run at seed 44, and the VAE ceiling."""
    from omnimatte_eval import toy_eval
    from omnimatte_workflows.toy_graph import TOY_FILES

    effect, quality = TOY_FILES["effect_expert"], TOY_FILES["quality_expert"]
    pairs = {"dual": (effect, quality), "quality_only": (None, quality), "effect_only": (effect, None)}
    alphas = {name: toy_eval.decompose(models, clip, e, q, 0.5, steps, seed=SPREAD_SEEDS[0])["alpha"]
              for name, (e, q) in pairs.items()}
    alphas["dual_second_seed"] = toy_eval.decompose(models, clip, effect, quality, 0.5, steps,
                                                    seed=SPREAD_SEEDS[1])["alpha"]
    alphas["vae_ceiling"] = toy_eval.vae_ceiling_layers(models.vae, clip)["alpha"]
    return alphas


def world_block(models, clips: list, steps: int, picture: Path) -> dict:
    """One world's rows (means over clips) and its picture."""
    import torch

    from omnimatte_core.metrics import alpha_detail
    from omnimatte_eval.sheets import grey, labelled_sheet
    from omnimatte_eval.toy_eval import mean_metrics

    rows: dict[str, list[dict]] = {name: [] for name in (*METHODS, "vae_ceiling", "dual_seed_spread")}
    columns = []
    for index, clip in enumerate(clips):
        alphas = method_alphas(models, clip, steps)
        for name in (*METHODS, "vae_ceiling"):
            rows[name].append(alpha_detail(alphas[name], clip.gt_alpha, clip.object_region, clip.shadow_only))
        spread = alpha_detail(alphas["dual"], alphas["dual_second_seed"], clip.object_region, clip.shadow_only)
        rows["dual_seed_spread"].append({k: spread[f"{k}_mae"] for k in ("interior", "edge", "shadow")})
        if index < PICTURE_CLIPS:
            middle = clip.video.shape[0] // 2
            shown = (clip.gt_alpha, *(alphas[m] for m in (*METHODS, "vae_ceiling")))
            columns.append([grey(a[middle:middle + 1]) for a in shown] + [clip.video[middle:middle + 1]])
    names = ("ground truth", *METHODS, "VAE ceiling", "input")
    stacked = [torch.cat([c[i] for c in columns], dim=0) for i in range(len(names))]  # each [clips, H, W, 3]
    picture.parent.mkdir(parents=True, exist_ok=True)
    labelled_sheet(stacked, names, range(len(columns))).save(picture)
    return {"clips": len(clips), **{name: mean_metrics(r) for name, r in rows.items()}, "picture": str(picture)}


def run(args: argparse.Namespace) -> dict:
    from benchmarks.toy_table import (
        toy_models,
        world_clips,
        world_hashes,
        world_label,
        world_names,
    )
    from omnimatte_workflows.toy_graph import TOY_STEPS

    models = toy_models(args.threads, args.shift, args.toy_world)
    steps = args.steps or TOY_STEPS
    started = time.perf_counter()
    worlds = {name: world_block(models, world_clips(name, args.clips), steps, RESULTS / f"alpha_detail_{name}.png")
              for name in world_names(args.world)}
    return {"steps": steps, "tau": 0.5, "shift": args.shift, "worlds": worlds,
            "seconds": round(time.perf_counter() - started, 1), "toy_world": world_label(args.toy_world),
            "toy_world_sha256": world_hashes(args.toy_world)}


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    print(json.dumps(run(args), indent=None if args.json else 1))


if __name__ == "__main__":
    main()
