"""Quality measures against ground truth (docs/toy_world.md): alpha MAE per region, PSNR per region.

Frames [N, H, W, 3] and alphas [N, H, W] in [0, 1]; regions are bool [N, H, W]. A measure over
an empty region is ``None`` (not 0, not NaN), so averages can skip it.
"""

from __future__ import annotations

import math

import torch


def region_mae(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> float | None:
    """Mean |pred − target| over ``region`` (alphas [N, H, W])."""
    if not bool(region.any()):
        return None
    return float((pred - target).abs()[region].mean())


def region_psnr(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor | None = None) -> float | None:
    """PSNR (peak 1) of frames [N, H, W, 3] over ``region`` (all pixels when None)."""
    err = (pred[..., :3] - target[..., :3]).pow(2).mean(-1)  # [N, H, W]
    if region is not None:
        if not bool(region.any()):
            return None
        err = err[region]
    return 10 * math.log10(1.0 / max(float(err.mean()), 1e-12))


def recomposite(foreground: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """α·F + (1 − α)·B: [N, H, W, 3] × 2 and [N, H, W] → [N, H, W, 3]."""
    a = alpha.unsqueeze(-1)
    return a * foreground[..., :3] + (1 - a) * background[..., :3]


def layer_metrics(video: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor, foreground: torch.Tensor,
                  gt_background: torch.Tensor, gt_alpha: torch.Tensor, object_region: torch.Tensor,
                  shadow_region: torch.Tensor, removed_region: torch.Tensor) -> dict:
    """The toy table's measures for one decomposition (every input at the same size and frame count)."""
    def rounded(value):
        return None if value is None else round(value, 4)

    return {
        "alpha_mae_object": rounded(region_mae(alpha, gt_alpha, object_region)),
        "alpha_mae_shadow": rounded(region_mae(alpha, gt_alpha, shadow_region)),
        "bg_psnr_region": rounded(region_psnr(background, gt_background, removed_region)),
        "bg_psnr_outside": rounded(region_psnr(background, gt_background, ~removed_region)),
        "recomposite_psnr": rounded(region_psnr(recomposite(foreground, alpha, background), video)),
    }
