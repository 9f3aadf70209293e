"""The paper's pseudo-shadow (DESIGN §1): the object's alpha, compressed and sheared, darkens the ground.

The shadow is cast from the object's lowest point ("feet") downwards: row ``y`` below the
feet shows object row ``feet − (y − feet)/compress``, shifted sideways by ``tan(shear)·(y −
feet)``. It is rendered at ``opacity`` and blurred; it darkens the background before the
foreground is composited on top.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .warp import gaussian_blur, pixel_grid, sample_at

COMPRESS_RANGE = (0.10, 0.30)  # shadow height / object height
SHEAR_DEG_RANGE = (30.0, 60.0)  # |shear|, either direction
OPACITY_RANGE = (0.30, 0.70)
BLUR_RANGE = (0.03, 0.12)  # blur sigma as a share of the shadow's height (keeps its peak and extent)


@dataclass(frozen=True)
class ShadowParams:
    compress: float
    shear_deg: float  # signed: positive leans right going down
    opacity: float
    blur_share: float

    def to_dict(self) -> dict:
        return asdict(self)


def sample_shadow_params(rng: np.random.Generator) -> ShadowParams:
    sign = 1.0 if rng.random() < 0.5 else -1.0
    return ShadowParams(compress=float(rng.uniform(*COMPRESS_RANGE)),
                        shear_deg=sign * float(rng.uniform(*SHEAR_DEG_RANGE)),
                        opacity=float(rng.uniform(*OPACITY_RANGE)),
                        blur_share=float(rng.uniform(*BLUR_RANGE)))


def feet_row(alpha: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Lowest row per frame where alpha ≥ threshold: alpha [N, H, W] → [N] (0 for empty frames)."""
    rows = (alpha >= threshold).any(dim=-1)  # [N, H]
    index = torch.arange(alpha.shape[1]).expand_as(rows)
    return torch.where(rows, index, torch.zeros_like(index)).amax(dim=1).float()


def object_height(alpha: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Rows covered by alpha ≥ threshold per frame: [N, H, W] → [N]."""
    return (alpha >= threshold).any(dim=-1).sum(dim=1).float()


def render_shadow(alpha: torch.Tensor, params: ShadowParams, shear_enabled: bool = True) -> torch.Tensor:
    """Object alpha [N, H, W] → shadow matte [N, H, W] in [0, opacity] (``shear_enabled`` for tests)."""
    n, h, w = alpha.shape
    x, y = pixel_grid(h, w)
    feet = feet_row(alpha).view(n, 1, 1)
    below = (y[None] - feet)  # distance below the feet, pixels
    slope = math.tan(math.radians(params.shear_deg)) if shear_enabled else 0.0
    src_x = x[None] - slope * below
    src_y = feet - below / params.compress
    matte = sample_at(alpha[:, None], src_x.expand(n, h, w), src_y.expand(n, h, w), padding_mode="zeros")
    matte = matte * (below >= 0).unsqueeze(1)  # cast below the feet only
    height = float(object_height(alpha).mean()) * params.compress
    matte = gaussian_blur(matte, params.blur_share * height)
    return (matte[:, 0] * params.opacity).clamp(0, 1)
