"""The paper's comparisons, reproduced at toy scale on held-out toy-world clips (docs/toy_world.md).

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.toy_table --json

Prints one JSON object:
- ``methods``: a row per method (``dual``, ``effect_only``, ``quality_only``, and the training-free
  ``clean_plate_remover`` / ``clean_plate_gt``: AlphaFromCleanPlate on the toy remover's plate or
  on the ground-truth plate) with the mean
  ``alpha_mae_object``, ``alpha_mae_shadow``, ``bg_psnr_region``, ``bg_psnr_outside``,
  ``recomposite_psnr`` over the clips (Fig. 7's ablation);
- ``tau_sweep``: the dual result for several τ under both readings of eq. 7 — ``sigma`` (τ
  compared with σ after shift, what the pack does) and ``schedule`` (τ compared with the
  unshifted timestep, i.e. the position in the schedule; run as the σ threshold it maps to);
- ``block_analysis``: C_b per block and the suggested K of the shipped toy world's build;
- ``vae``: the toy VAE's held-out round-trip PSNR on the same clips.
Writes ``benchmarks/results/toy_table.json`` and PNG plots of the τ sweep and C_b beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TAUS = (0.1, 0.3, 0.5, 0.7, 0.9)
SHIFT = 5.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--clips", type=int, default=6, help="held-out clips")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the toy workflow's)")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def schedule_tau_as_sigma(tau: float, shift: float = SHIFT) -> float:
    """τ read as the unshifted timestep t → the σ threshold it means: σ = s·t / (1 + (s − 1)·t)."""
    return shift * tau / (1 + (shift - 1) * tau)


def vae_round_trip_psnr(vae, clips) -> float:
    import torch

    from omnimatte_core.metrics import region_psnr

    values = []
    with torch.inference_mode():
        for clip in clips:
            decoded = vae.decode(vae.encode(clip.video)).reshape(clip.video.shape).float().clamp(0, 1)
            values.append(region_psnr(decoded, clip.video))
    return round(sum(values) / len(values), 3)


def run(args: argparse.Namespace) -> dict:
    from scripts import comfy_host, toy_eval
    from scripts.build_workflows import TOY_FILES, TOY_STEPS
    from training.toy_data import as_toy_clip, held_out_clips

    comfy_host.import_comfy(threads=args.threads)
    comfy_host.load_nodes_with_pack()
    models = toy_eval.load_toy_models()
    clips = [as_toy_clip(c) for c in held_out_clips(args.clips)]
    steps = args.steps or TOY_STEPS
    started = time.perf_counter()

    def table(effect, quality, tau) -> dict:
        rows = [toy_eval.measure(c, toy_eval.decompose(models, c, effect, quality, tau, steps)) for c in clips]
        return toy_eval.mean_metrics(rows)

    effect, quality = TOY_FILES["effect_expert"], TOY_FILES["quality_expert"]
    methods = {"dual": table(effect, quality, 0.5), "effect_only": table(effect, None, 0.5),
               "quality_only": table(None, quality, 0.5), **clean_plate_rows(models, clips, steps)}
    sweep = {"sigma": {str(t): table(effect, quality, t) for t in TAUS},
             "schedule": {str(t): table(effect, quality, schedule_tau_as_sigma(t)) for t in TAUS}}
    manifest = json.loads((ROOT / "toy_world" / "manifest.json").read_text())
    blocks = json.loads((ROOT / "toy_world" / "block_scores.json").read_text())
    result = {"clips": len(clips), "steps": steps, "methods": methods, "tau_sweep": sweep,
              "block_analysis": {"scores": blocks["scores"], "suggested_k": blocks["suggested_k"]},
              "vae": {"round_trip_psnr": vae_round_trip_psnr(models.vae, clips)},
              "toy_world_sha256": {k: v["sha256"][:12] for k, v in manifest["files"].items()},
              "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "toy_table.json").write_text(json.dumps(result, indent=1))
    result["plots"] = [str(p.relative_to(ROOT)) for p in plot(result, RESULTS)]
    return result


def clean_plate_rows(models, clips, steps: int) -> dict:
    """AlphaFromCleanPlate with the toy remover's plate (the dual run's background row, which masks B/C keep
    equal to the stock remover's) and with the ground-truth plate (the method's ceiling)."""
    from scripts import toy_eval

    remover = [toy_eval.decompose(models, c, steps=steps)["background"] for c in clips]
    return {"clean_plate_remover": toy_eval.mean_metrics(
                [toy_eval.measure(c, toy_eval.clean_plate_layers(c, p)) for c, p in zip(clips, remover)]),
            "clean_plate_gt": toy_eval.mean_metrics(
                [toy_eval.measure(c, toy_eval.clean_plate_layers(c, c.gt_background)) for c in clips])}


def plot(result: dict, folder: Path) -> list[Path]:
    """PNG plots (PIL, training.plotting): alpha MAE over τ for both readings, and C_b per block."""
    from training.plotting import line_plot

    folder.mkdir(parents=True, exist_ok=True)
    taus = [float(t) for t in TAUS]
    series = {}
    for reading in ("sigma", "schedule"):
        rows = result["tau_sweep"][reading]
        series[f"shadow MAE, tau vs {reading}"] = [rows[str(t)]["alpha_mae_shadow"] for t in TAUS]
        series[f"object MAE, tau vs {reading}"] = [rows[str(t)]["alpha_mae_object"] for t in TAUS]
    sweep = folder / "toy_table_tau_sweep.png"
    line_plot(sweep, taus, series, "toy world: alpha MAE over tau (held-out clips)", "tau", "MAE")
    scores = result["block_analysis"]["scores"]
    blocks = folder / "toy_table_block_scores.png"
    line_plot(blocks, list(range(len(scores))), {"C_b": scores},
              f"Effects-Association score per block (suggested K = {result['block_analysis']['suggested_k']})",
              "block", "C_b")
    return [sweep, blocks]


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    result = run(args)
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
