"""``python -m training.sweep_tau``: dual-expert sampling over a τ grid on held-out synthetic clips.

For each τ the Effect Expert serves σ > τ and the Quality Expert the rest (the inference
schedule, ``omnimatte_core.patching.apply_branch_experts``); the decoded alpha is compared
with the GT alpha on the object region and on the effect (shadow) region separately
(the paper's Fig. 8). Writes tau_sweep.json and tau_sweep.png.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


from . import common

log = logging.getLogger("training.sweep_tau")


def sweep(inputs: common.Inputs, effect, quality, taus: list[float], clips: int, steps: int, seed: int) -> dict:
    from omnimatte_core.experts import ExpertPair

    from .validate import HeldOut, evaluate

    held = [HeldOut(*common.encoded_clip(inputs, inputs.held_out, i), i) for i in range(clips)]
    rows = []
    for tau in taus:
        row = {"tau": tau, **evaluate(inputs.base, ExpertPair(effect, quality), inputs.vae, held, steps, seed, tau)}
        log.info("τ=%.2f: object MSE %s, effect MSE %s", tau, row["object_mse"], row["shadow_mse"])
        rows.append(row)
    return {"rows": rows, "clips": clips, "steps": steps, "effect": effect.source, "quality": quality.source}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.sweep_tau", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_model_args(p)
    common.add_data_args(p, shadow_prob=1.0)
    p.add_argument("--effect", required=True, help="Effect Expert file")
    p.add_argument("--quality", required=True, help="Quality Expert file")
    p.add_argument("--output", type=Path, required=True, help="folder for tau_sweep.json and tau_sweep.png")
    p.add_argument("--taus", type=float, nargs="+", default=[i / 10 for i in range(11)])
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--steps", type=int, default=20)
    return p


def main(argv: list[str] | None = None) -> dict:
    args = common.start_cli(parser(), argv)
    from omnimatte_core.expert_file import load_expert

    from .plotting import line_plot

    inputs = common.load_inputs(args, "auto")
    result = sweep(inputs, load_expert(args.effect), load_expert(args.quality), args.taus, args.clips, args.steps,
                   args.seed)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "tau_sweep.json").write_text(json.dumps(result, indent=1))
    rows = result["rows"]
    line_plot(args.output / "tau_sweep.png", [r["tau"] for r in rows],
              {"object MSE": [r["object_mse"] for r in rows], "effect MSE": [r["shadow_mse"] for r in rows]},
              "alpha MSE over the τ grid", "tau", "MSE")
    log.info("wrote %s", args.output)
    return result


if __name__ == "__main__":
    main()
