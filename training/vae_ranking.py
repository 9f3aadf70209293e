"""Which finished toy-VAE run a build adopts (``training.toy_world --vae-from RUN …``): the one whose
round-trip ceiling meets most of issue 22's goals, then by margin."""

from __future__ import annotations

import json
from pathlib import Path

from training.toy_vae import FILE_NAME

CEILING_GOALS = {"alpha_mae_object": 0.04, "alpha_mae_shadow": 0.06, "video_psnr": 32.0, "plate_psnr_region": 33.0}


def ceiling_score(ceiling: dict) -> tuple[int, float]:
    """(goals met, summed relative margin): how ``pick_best`` ranks finished VAE runs (issue 22's goals)."""
    met, margin = 0, 0.0
    for key, goal in CEILING_GOALS.items():
        value = ceiling[key]
        rel = (goal - value) / goal if key.startswith("alpha") else (value - goal) / goal * 10
        met += rel >= 0
        margin += rel
    return met, margin


def pick_best(runs: list[Path]) -> Path:
    """The finished run (a folder with ``metrics.json``) whose ceiling meets most goals, then by margin."""
    finished = [r for r in runs if (r / "metrics.json").is_file() and (r / FILE_NAME).is_file()]
    if not finished:
        raise SystemExit(f"no finished VAE run among {', '.join(map(str, runs))}")
    return max(finished, key=lambda r: ceiling_score(json.loads((r / "metrics.json").read_text())["ceiling"]))
