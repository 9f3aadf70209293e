"""Quality measures against ground truth (docs/toy_world.md): alpha MAE per region, PSNR per region.

Frames [N, H, W, 3] and alphas [N, H, W] in [0, 1]; regions are bool [N, H, W]. A measure over
an empty region is ``None`` (not 0, not NaN), so averages can skip it.

The quality of a layer is what a compositor sees (issue 22): the recovered foreground with its alpha
over a NEW background, against the ground-truth layer over the same background. Re-compositing over
the method's own plate cannot be that measure: the foreground is solved from the video, so any alpha
(even α ≡ 1) gives the input back; it stays only as ``recomposite_psnr_selfcheck``.
"""

from __future__ import annotations

import math

import torch

from .layers import recover_foreground
from .quantise import rounded

OUTSIDE_ALPHA_MAX = 0.02  # ground truth below this is "no layer": any alpha there is false alpha
LAYER_ALPHA_MIN = 0.1  # ground truth at or above this is the layer (object ∪ shadow)


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


def compositing_background(frames: int, height: int, width: int) -> torch.Tensor:
    """The new background layers are judged over: [N, H, W, 3], fixed (no seed), bright and coloured.

    Bright, so a missing shadow (a dark layer) costs; varied in hue and with a coarse checker, so
    false alpha that carries the old plate along shows wherever the plates differ; unlike the
    worlds' own plates (no noise, no stripes), so it never matches them by chance.
    """
    v = torch.linspace(0.0, 1.0, height).view(height, 1).expand(height, width)  # [H, W]
    u = torch.linspace(0.0, 1.0, width).view(1, width).expand(height, width)  # [H, W]
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    checker = ((ys // 16 + xs // 16) % 2).float() * 2 - 1  # [H, W] ±1
    rgb = torch.stack((0.55 + 0.35 * u, 0.80 - 0.25 * v, 0.40 + 0.35 * (1 - u) * v), dim=-1)  # [H, W, 3]
    rgb = rgb + 0.08 * checker.unsqueeze(-1)
    return rgb.clamp(0.0, 1.0).unsqueeze(0).expand(frames, height, width, 3).contiguous()


def ground_truth_foreground(video: torch.Tensor, gt_background: torch.Tensor, gt_alpha: torch.Tensor) -> torch.Tensor:
    """The ground-truth layer's colour [N, H, W, 3], solved from video = α·F + (1 − α)·plate with the true α and
    plate (the clips store video, plate and α, not F); where α is 0, F is 0 and never shows."""
    return recover_foreground(video[..., :3].float(), gt_background[..., :3].float(), gt_alpha.float())


def composite_metrics(alpha: torch.Tensor, foreground: torch.Tensor, gt_alpha: torch.Tensor,
                      gt_foreground: torch.Tensor, new_background: torch.Tensor,
                      shadow_region: torch.Tensor) -> dict[str, float | None]:
    """PSNR of layer-over-``new_background`` against the ground-truth layer over it: the whole frame, and the
    shadow-only region (where a mask copy has nothing). Alphas [N, H, W], frames [N, H, W, 3]."""
    ours = recomposite(foreground, alpha, new_background)  # [N, H, W, 3]
    truth = recomposite(gt_foreground, gt_alpha, new_background)  # [N, H, W, 3]
    return {"composite_psnr": region_psnr(ours, truth),
            "composite_psnr_shadow": region_psnr(ours, truth, shadow_region)}


def layer_metrics(video: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor, foreground: torch.Tensor,
                  gt_background: torch.Tensor, gt_alpha: torch.Tensor, object_region: torch.Tensor,
                  shadow_region: torch.Tensor, removed_region: torch.Tensor,
                  new_background: torch.Tensor | None = None) -> dict:
    """The toy table's measures for one decomposition (every input at the same size and frame count).

    ``composite_psnr*``: the compositor's measure (``new_background``: ``compositing_background`` when None);
    ``alpha_mae_outside``: false alpha where the ground truth has no layer; ``bg_psnr_*``: the plate;
    ``recomposite_psnr_selfcheck``: F and α back over the method's own plate against the input — a
    consistency check of the layer maths, high for any alpha, never a quality measure.
    """
    if new_background is None:
        new_background = compositing_background(*alpha.shape)
    gt_foreground = ground_truth_foreground(video, gt_background, gt_alpha)
    composite = composite_metrics(alpha, foreground, gt_alpha, gt_foreground, new_background, shadow_region)
    return {
        "composite_psnr": rounded(composite["composite_psnr"]),
        "composite_psnr_shadow": rounded(composite["composite_psnr_shadow"]),
        "alpha_mae_object": rounded(region_mae(alpha, gt_alpha, object_region)),
        "alpha_mae_shadow": rounded(region_mae(alpha, gt_alpha, shadow_region)),
        "alpha_mae_outside": rounded(region_mae(alpha, gt_alpha, gt_alpha < OUTSIDE_ALPHA_MAX)),
        "bg_psnr_region": rounded(region_psnr(background, gt_background, removed_region)),
        "bg_psnr_outside": rounded(region_psnr(background, gt_background, ~removed_region)),
        "recomposite_psnr_selfcheck": rounded(region_psnr(recomposite(foreground, alpha, background), video)),
    }


EDGE_BAND_PX = 3  # object pixels this close to the object's border form its edge band


def object_interior(region: torch.Tensor, band: int = EDGE_BAND_PX) -> torch.Tensor:
    """The pixels of ``region`` [N, H, W] whose whole (2·band+1)² square is in it: the object less its edge band."""
    import torch.nn.functional as F

    outside = (~region).float().unsqueeze(1)  # [N, 1, H, W]
    near_outside = F.max_pool2d(outside, 2 * band + 1, stride=1, padding=band).squeeze(1) > 0
    return region & ~near_outside


def detail_regions(object_region: torch.Tensor, shadow_region: torch.Tensor) -> dict[str, torch.Tensor]:
    """``alpha_detail``'s regions [N, H, W]: the object's interior, its edge band, the shadow."""
    interior = object_interior(object_region)
    return {"interior": interior, "edge": object_region & ~interior, "shadow": shadow_region}


def alpha_detail(alpha: torch.Tensor, gt_alpha: torch.Tensor, object_region: torch.Tensor,
                 shadow_region: torch.Tensor) -> dict[str, float | None]:
    """Where an alpha [N, H, W] goes wrong: its mean beside the truth's, and its MAE, in the object's interior,
    the object's edge band and the shadow. A too-faint matte shows as a low mean; a blurred one as a low edge
    mean with a near-true interior; a misplaced one as a high MAE with a true mean."""
    out: dict[str, float | None] = {}
    for name, region in detail_regions(object_region, shadow_region).items():
        empty = not bool(region.any())
        out[f"{name}_mean"] = None if empty else float(alpha[region].mean())
        out[f"{name}_gt_mean"] = None if empty else float(gt_alpha[region].mean())
        out[f"{name}_mae"] = region_mae(alpha, gt_alpha, region)
    return out
