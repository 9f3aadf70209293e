"""The paper's comparisons, reproduced at toy scale on held-out clips of two worlds (docs/toy_world.md).

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.toy_table --json
    (quick look: --world second --clips 1 --steps 4 --no-sweep; steps sweep: --world toy --no-sweep --steps-sweep)

Prints one JSON object with a block per world in ``worlds``: ``toy`` (``training.toy_data``'s held-out
clips, seed 1,000,000) and ``second`` (``benchmarks.second_world``: other shapes, shadows and plates,
never trained on). Each world has:
- ``methods``: a row per method with the mean over the clips of
  ``composite_psnr`` (the layer over a new background against the ground-truth layer over it: the
  compositor's measure), ``composite_psnr_shadow`` (the same, shadow-only region),
  ``alpha_mae_object`` / ``alpha_mae_shadow`` / ``alpha_mae_outside`` (false alpha),
  ``bg_psnr_region`` / ``bg_psnr_outside`` and ``recomposite_psnr_selfcheck`` (a consistency check
  only: high for any alpha). Methods: ``dual``, ``effect_only``, ``quality_only`` (Fig. 7's
  ablation); the training-free ``clean_plate_remover`` / ``clean_plate_gt`` (AlphaFromCleanPlate on
  the toy remover's plate or on the ground-truth plate); ``vae_ceiling`` (ground-truth alpha and
  plate through the toy VAE's round trip); the trivial answers ``mask_as_alpha``, ``alpha_zero``,
  ``alpha_one`` (with the ground-truth plate, ``omnimatte_eval.toy_eval.reference_layers``);
- ``bars``: ``omnimatte_eval.toy_eval.quality_bars`` of every method against the trivial rows;
- ``tau_sweep`` (unless ``--no-sweep``): the dual result for several τ under both readings of eq. 7 —
  ``sigma`` (τ compared with σ after shift, what the pack does) and ``schedule`` (τ compared with the
  unshifted timestep, i.e. the position in the schedule; run as the σ threshold it maps to);
- ``steps_sweep`` (with ``--steps-sweep``): the dual result at τ = 0.5 for STEP_COUNTS steps under both
  readings, with each step's σ (ComfyUI's own schedule of the toy model, shift 5) and the expert it gets;
- ``vae``: the toy VAE's round-trip PSNR of the clips' video.
Beside them ``block_analysis`` (C_b per block and the suggested K of the measured build), ``toy_world`` (the
folder measured) and ``toy_world_sha256`` (each of its files' hash, read from the files). ``--toy-world DIR``
measures a build that is not shipped: DIR laid out like the pack's ``toy_world/`` (``training.toy_world``'s
package with ``--package-to DIR``, or ``python -m training.assemble_world``). Writes
``benchmarks/results/toy_table.json`` and PNG plots of the τ sweeps, the steps sweep and C_b beside it.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHIPPED_WORLD = ROOT / "toy_world"
TAUS = (0.1, 0.3, 0.5, 0.7, 0.9)
STEP_COUNTS = (2, 4, 8, 20, 50)
STEPS_SWEEP_TAU = 0.5
SHIFT = 5.0


def run_parser(doc: str) -> argparse.ArgumentParser:
    """The options every toy-world measurement takes: --json, --clips, --steps, --threads, --toy-world."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--clips", type=int, default=6, help="held-out clips per world")
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the toy workflow's)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--toy-world", type=Path, default=SHIPPED_WORLD, metavar="DIR",
                   help="the build to measure: a folder laid out like the pack's toy_world/ (default: the shipped one)")
    return p


def parse_checked(p: argparse.ArgumentParser, extra: tuple[str, ...] = ()) -> argparse.Namespace:
    """Parse, and refuse a --toy-world folder that lacks a toy file (or one of ``extra``) before the host starts."""
    from omnimatte_eval.toy_eval import toy_world_files

    args = p.parse_args()
    args.toy_world = args.toy_world.resolve()
    try:
        toy_world_files(args.toy_world)
    except FileNotFoundError as err:
        p.error(str(err))
    for name in extra:
        if not (args.toy_world / name).is_file():
            p.error(f"toy world {args.toy_world}: missing {name}")
    return args


def parse_args() -> argparse.Namespace:
    p = run_parser(__doc__)
    p.add_argument("--seed", type=int, default=43, help="the sampler's noise seed (the toy workflow's 43)")
    p.add_argument("--world", choices=("toy", "second", "both"), default="both", help="which held-out clips")
    p.add_argument("--no-sweep", action="store_true", help="skip the τ sweep (10 more runs per clip)")
    p.add_argument("--steps-sweep", action="store_true",
                   help="add the steps sweep (2-50 steps, both readings of τ: ~10x the default run's sampling)")
    return parse_checked(p, extra=("block_scores.json",))  # training.analyze_blocks' output: C_b and K


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


def world_clips(world: str, count: int) -> list:
    """The first ``count`` held-out ToyClips of ``world`` ("toy" or "second"), or with "train" the toy world's
    first training clips (the experts' pool: how well they fit what they saw, never a quality figure)."""
    if world == "second":
        from benchmarks import second_world

        return second_world.held_out_clips(count)
    from training.toy_data import as_toy_clip, held_out_clips, train_clips

    if world == "train":
        stream = train_clips()
        return [as_toy_clip(stream.clip(i)) for i in range(count)]
    return [as_toy_clip(c) for c in held_out_clips(count)]


def world_table(models, clips: list, steps: int, sweep: bool, steps_sweep: bool = False, seed: int = 43) -> dict:
    """One world's block of the result (see the module docstring). Runs repeated across rows (same experts,
    τ and steps) are made once."""
    from omnimatte_eval import toy_eval
    from omnimatte_workflows.toy_graph import TOY_FILES

    effect, quality = TOY_FILES["effect_expert"], TOY_FILES["quality_expert"]

    made: dict[tuple, tuple[list, dict]] = {}

    def table(effect, quality, tau, keep: list | None = None, count: int = steps) -> dict:
        key = (effect, quality, tau, count)
        if key not in made:
            runs = [toy_eval.decompose(models, c, effect, quality, tau, count, seed=seed) for c in clips]
            made[key] = runs, toy_eval.mean_metrics([toy_eval.measure(c, r) for c, r in zip(clips, runs)])
        if keep is not None:
            keep.extend(made[key][0])
        return made[key][1]

    dual_runs: list = []
    methods = {"dual": table(effect, quality, 0.5, dual_runs), "effect_only": table(effect, None, 0.5),
               "quality_only": table(None, quality, 0.5),
               **clean_plate_rows(clips, [r["background"] for r in dual_runs]),
               "vae_ceiling": toy_eval.mean_metrics(
                   [toy_eval.measure(c, toy_eval.vae_ceiling_layers(models.vae, c)) for c in clips])}
    references = {kind: toy_eval.reference_row(clips, kind)
                  for kind in toy_eval.REFERENCE_ROWS if kind != "ground_truth"}
    methods.update(references)
    block = {"clips": len(clips), "methods": methods,
             "bars": {name: toy_eval.quality_bars(row, references) for name, row in methods.items()},
             "vae": {"round_trip_psnr": vae_round_trip_psnr(models.vae, clips)}}
    if sweep:
        block["tau_sweep"] = {"sigma": {str(t): table(effect, quality, t) for t in TAUS},
                              "schedule": {str(t): table(effect, quality, schedule_tau_as_sigma(t)) for t in TAUS}}
    if steps_sweep:
        block["steps_sweep"] = steps_sweep_block(models.model, lambda tau, n: table(effect, quality, tau, count=n))
    return block


def step_sigmas(model, steps: int) -> list[float]:
    """σ at the start of each of ``steps`` euler steps, from ComfyUI's own "simple" schedule of ``model`` (its
    ModelSamplingSD3 shift): the σ each step's expert is chosen from."""
    import comfy.samplers

    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps)  # [steps+1]
    return [float(s) for s in sigmas[:-1]]


def steps_sweep_block(model, table) -> dict:
    """The steps sweep: per reading of τ, per step count, the dual row plus each step's σ and expert.

    ``table(σ threshold, steps)`` → the mean metrics row of the dual run."""
    from omnimatte_core.schedule import ExpertSchedule

    thresholds = {"sigma": STEPS_SWEEP_TAU, "schedule": schedule_tau_as_sigma(STEPS_SWEEP_TAU)}
    block: dict = {"tau": STEPS_SWEEP_TAU, "steps": list(STEP_COUNTS),
                   "sigma_threshold": {k: round(v, 4) for k, v in thresholds.items()}}
    for reading, threshold in thresholds.items():
        pick = ExpertSchedule("effect", "quality", threshold).expert_at  # the sampler's own rule: σ > τ → effect
        rows = {}
        for n in STEP_COUNTS:
            sigmas = step_sigmas(model, n)
            experts = [pick(s) for s in sigmas]
            rows[str(n)] = {**table(threshold, n), "effect_steps": experts.count("effect"),
                            "quality_steps": experts.count("quality"),
                            **({"step_sigmas": [round(s, 4) for s in sigmas], "step_experts": experts} if n <= 8 else {})}
        block[reading] = rows
    return block


def toy_models(threads: int, shift: float = SHIFT, toy_world: Path = SHIPPED_WORLD):
    """The host started with the pack, and the toy world's models (toy_eval.ToyModels; ``toy_world``: a folder
    laid out like the shipped one, found ahead of it), the sampler's ModelSamplingSD3 at ``shift`` (the toy
    workflow's 5)."""
    from omnimatte_eval import toy_eval
    from omnimatte_host import comfy_host

    comfy_host.import_comfy(threads=threads)
    comfy_host.load_nodes_with_pack()
    if toy_world.resolve() != SHIPPED_WORLD:
        toy_eval.use_toy_world(toy_world)
    return toy_eval.load_toy_models(shift)


def world_names(world: str) -> tuple[str, ...]:
    return ("toy", "second") if world == "both" else (world,)


def world_hashes(toy_world: Path) -> dict[str, str]:
    """The first 12 hex digits of each model file's sha256, read from the files: which build was measured."""
    import hashlib

    from omnimatte_eval.toy_eval import toy_world_files

    files = toy_world_files(toy_world)
    return {part: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for part, path in files.items()}


def world_label(toy_world: Path) -> str:
    return str(toy_world.relative_to(ROOT)) if toy_world.is_relative_to(ROOT) else str(toy_world)


def run(args: argparse.Namespace) -> dict:
    from omnimatte_workflows.toy_graph import TOY_STEPS

    models = toy_models(args.threads, toy_world=args.toy_world)
    steps = args.steps or TOY_STEPS
    started = time.perf_counter()
    worlds = {name: world_table(models, world_clips(name, args.clips), steps, not args.no_sweep, args.steps_sweep,
                                args.seed)
              for name in world_names(args.world)}
    blocks = json.loads((args.toy_world / "block_scores.json").read_text())
    result = {"clips": args.clips, "steps": steps, "seed": args.seed, "worlds": worlds,
              "block_analysis": {"scores": blocks["scores"], "suggested_k": blocks["suggested_k"]},
              "toy_world": world_label(args.toy_world), "toy_world_sha256": world_hashes(args.toy_world),
              "seconds": round(time.perf_counter() - started, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "toy_table.json").write_text(json.dumps(result, indent=1))
    result["plots"] = [str(p.relative_to(ROOT)) for p in plot(result, RESULTS)]
    return result


def clean_plate_rows(clips, remover_plates: list) -> dict:
    """AlphaFromCleanPlate with the toy remover's plate (the dual run's background, which masks B/C keep
    equal to the stock remover's) and with the ground-truth plate (the method's ceiling)."""
    from omnimatte_eval import toy_eval

    return {"clean_plate_remover": toy_eval.mean_metrics(
                [toy_eval.measure(c, toy_eval.clean_plate_layers(c, p)) for c, p in zip(clips, remover_plates)]),
            "clean_plate_gt": toy_eval.mean_metrics(
                [toy_eval.measure(c, toy_eval.clean_plate_layers(c, c.gt_background)) for c in clips])}


def plot(result: dict, folder: Path) -> list[Path]:
    """PNG plots (PIL, training.plotting): alpha MAE over τ for both readings per world, and C_b per block."""
    from training.plotting import line_plot

    folder.mkdir(parents=True, exist_ok=True)
    taus = [float(t) for t in TAUS]
    paths = []
    for world, block in result["worlds"].items():
        if "steps_sweep" in block:
            paths.append(plot_steps_sweep(block["steps_sweep"], folder / f"toy_table_steps_sweep_{world}.png", world))
        if "tau_sweep" not in block:
            continue
        series = {}
        for reading in ("sigma", "schedule"):
            rows = block["tau_sweep"][reading]
            series[f"shadow MAE, tau vs {reading}"] = [rows[str(t)]["alpha_mae_shadow"] for t in TAUS]
            series[f"object MAE, tau vs {reading}"] = [rows[str(t)]["alpha_mae_object"] for t in TAUS]
        sweep = folder / f"toy_table_tau_sweep_{world}.png"
        line_plot(sweep, taus, series, f"{world} world: alpha MAE over tau (held-out clips)", "tau", "MAE")
        paths.append(sweep)
    scores = result["block_analysis"]["scores"]
    blocks = folder / "toy_table_block_scores.png"
    line_plot(blocks, list(range(len(scores))), {"C_b": scores},
              f"Effects-Association score per block (suggested K = {result['block_analysis']['suggested_k']})",
              "block", "C_b")
    return [*paths, blocks]


def plot_steps_sweep(sweep: dict, path: Path, world: str) -> Path:
    """Two panels stacked: alpha MAE per region and the new-background composite PSNR over log10(steps)."""
    import math
    import tempfile

    from training.plotting import line_plot, stack_panels

    counts = sweep["steps"]
    xs = [math.log10(n) for n in counts]
    marks = ", ".join(str(n) for n in counts)
    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, keys, label in (("mae", ("alpha_mae_object", "alpha_mae_shadow"), "alpha MAE"),
                                  ("psnr", ("composite_psnr", "composite_psnr_shadow"), "dB")):
            series = {f"{key.replace('alpha_mae_', '').replace('composite_psnr', 'composite')}, tau vs {reading}":
                      [sweep[reading][str(n)][key] for n in counts] for key in keys for reading in ("sigma", "schedule")}
            panel = line_plot(Path(tmp) / f"{name}.png", xs, series,
                              f"{world} world, tau = {sweep['tau']}: {label} over steps ({marks}; log scale)",
                              "log10(steps)", label, marks=xs, size=(760, 380))
            panels.append(panel)
        return stack_panels(panels, path)


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    result = run(args)
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
