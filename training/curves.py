"""``python -m training.curves --work BUILD --vae-run RUN [RUN ...] --out PNG``: a toy-world build's
held-out curves, one panel per stage, to show whether each was trained until its curve flattened
(issue 22). The VAE runs are given oldest first when one was fine-tuned from another; their steps
are laid end to end.

``python -m training.curves --compare NAME=DIR NAME=DIR ... --out PNG``: several builds' remover and
expert curves on shared axes (DIR holds ``remover/``, ``effect/`` and ``quality/`` run folders), e.g.
two base widths.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from .plotting import line_plot, stack_panels

Panel = tuple[str, list[float], dict[str, list[float | None]], str]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def aligned(runs: dict[str, list[dict]], key: str) -> tuple[list[float], dict[str, list[float | None]]]:
    """Several runs' ``key`` over the union of their steps (None where a run has no record)."""
    steps = sorted({r["step"] for records in runs.values() for r in records if key in r})
    series = {}
    for name, records in runs.items():
        by_step = {r["step"]: r[key] for r in records if key in r}
        series[name] = [by_step.get(s) for s in steps]
    return [float(s) for s in steps], series


def vae_panel(vae_runs: list[Path]) -> Panel:
    xs, video, alpha, offset = [], [], [], 0
    for run in vae_runs:
        records = read_jsonl(run / "validation.jsonl")
        records = records[1:] if offset and records and records[0]["step"] == 0 else records  # the start = the last end
        for r in records:
            xs.append(float(offset + r["step"]))
            video.append(r["psnr"])
            alpha.append(r.get("psnr_alpha"))
        offset += records[-1]["step"] if records else 0
    return ("VAE: held-out round trip, the runs one after another", xs, {"video PSNR": video, "alpha PSNR": alpha}, "dB")


def remover_panel(work: Path) -> Panel:
    records = read_jsonl(work / "remover" / "validation.jsonl")
    xs = [float(r["step"]) for r in records]
    return ("Remover: held-out plate PSNR", xs,
            {"removed region": [r["psnr_removed_region"] for r in records],
             "outside": [r["psnr_outside"] for r in records]}, "dB")


def expert_panels(work: Path) -> list[Panel]:
    runs = {role: read_jsonl(work / role / "validation.jsonl") for role in ("effect", "quality")}
    panels = []
    for key, title in (("flow_loss", "Experts: held-out flow loss"),
                       ("object_mse", "Experts: held-out alpha MSE on the object"),
                       ("shadow_mse", "Experts: held-out alpha MSE on the shadow")):
        xs, series = aligned(runs, key)
        panels.append((title, xs, series, key))
    return panels


def comparison_panels(builds: dict[str, Path]) -> list[Panel]:
    """One panel per curve (remover plate, each expert's flow loss and shadow MSE), one line per build."""
    panels = []
    for stage, key, title, unit in (
            ("remover", "psnr_removed_region", "Remover: held-out plate PSNR in the removed region", "dB"),
            ("effect", "flow_loss", "Effect Expert: held-out flow loss", "flow_loss"),
            ("quality", "flow_loss", "Quality Expert: held-out flow loss", "flow_loss"),
            ("effect", "shadow_mse", "Effect Expert: held-out alpha MSE on the shadow", "shadow_mse"),
            ("quality", "shadow_mse", "Quality Expert: held-out alpha MSE on the shadow", "shadow_mse")):
        xs, series = aligned({name: read_jsonl(d / stage / "validation.jsonl") for name, d in builds.items()}, key)
        panels.append((title, xs, series, unit))
    return panels


def plot_curves(work: Path, vae_runs: list[Path], out: Path) -> Path:
    return draw_panels([vae_panel(vae_runs), remover_panel(work), *expert_panels(work)], out)


def draw_panels(panels: list[Panel], out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = [line_plot(Path(tmp) / f"{i}.png", xs, series, title, "step", ylabel)
                 for i, (title, xs, series, ylabel) in enumerate(panels) if len(xs) > 1]
        return stack_panels(files, out)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m training.curves", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, help="the training.toy_world --work folder")
    p.add_argument("--vae-run", type=Path, nargs="+", help="training.toy_vae run folders, oldest first")
    p.add_argument("--compare", nargs="+", metavar="NAME=DIR", help="builds to draw on shared axes instead")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    if args.compare:
        pairs = [item.partition("=") for item in args.compare]
        if any(not name or not folder for name, _, folder in pairs):
            p.error("--compare takes NAME=DIR items, e.g. 'width 128=toy_world_build/world_k3_8k/logs'")
        print(draw_panels(comparison_panels({name: Path(folder) for name, _, folder in pairs}), args.out))
    elif args.work and args.vae_run:
        print(plot_curves(args.work, args.vae_run, args.out))
    else:
        p.error("give --work and --vae-run, or --compare")


if __name__ == "__main__":
    main()
