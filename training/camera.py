"""Temporally coherent camera motion (DESIGN §1) applied to a background clip.

The clip is padded (reflection) into a larger canvas, asymmetrically, by U(0.3, 0.5) of its
width; the view then moves from affine state A to state B with an easing curve. A and B have
opposite-sign horizontal translations of 15–30 % of the width, rotation ±5°, scale
0.95–1.05 and shear ±3°.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .warp import pixel_grid, sample_at

PAD_RANGE = (0.3, 0.5)  # total horizontal padding / width
TRANSLATE_RANGE = (0.15, 0.30)  # |x translation| / width, opposite signs in A and B
ROTATE_DEG = 5.0
SCALE_RANGE = (0.95, 1.05)
SHEAR_DEG = 3.0


@dataclass(frozen=True)
class AffineState:
    tx: float  # horizontal translation, share of the width
    rotate_deg: float
    scale: float
    shear_deg: float


@dataclass(frozen=True)
class CameraParams:
    pad_left: int
    pad_right: int
    pad_top: int
    pad_bottom: int
    start: AffineState
    end: AffineState

    def to_dict(self) -> dict:
        return asdict(self)


def sample_camera(rng: np.random.Generator, height: int, width: int) -> CameraParams:
    pad = rng.uniform(*PAD_RANGE) * width
    left_share = rng.uniform(0.15, 0.85)  # asymmetric split
    pad_v = pad * height / width
    top_share = rng.uniform(0.15, 0.85)
    sign = 1.0 if rng.random() < 0.5 else -1.0

    def state(s: float) -> AffineState:
        return AffineState(tx=s * float(rng.uniform(*TRANSLATE_RANGE)), rotate_deg=float(rng.uniform(-ROTATE_DEG, ROTATE_DEG)),
                           scale=float(rng.uniform(*SCALE_RANGE)), shear_deg=float(rng.uniform(-SHEAR_DEG, SHEAR_DEG)))

    return CameraParams(pad_left=round(pad * left_share), pad_right=round(pad * (1 - left_share)),
                        pad_top=round(pad_v * top_share), pad_bottom=round(pad_v * (1 - top_share)),
                        start=state(sign), end=state(-sign))


def ease(t: torch.Tensor) -> torch.Tensor:
    """Smoothstep easing: zero velocity at both ends."""
    return t * t * (3 - 2 * t)


def view_matrices(params: CameraParams, frames: int, width: int) -> torch.Tensor:
    """Per-frame 2×3 maps from output pixel offsets (around the centre) to canvas offsets: [N, 2, 3]."""
    e = ease(torch.linspace(0, 1, frames, dtype=torch.float64))
    a, b = params.start, params.end
    out = []
    for s in e.tolist():
        lerp = lambda u, v: u + (v - u) * s  # noqa: E731
        rot, shear = math.radians(lerp(a.rotate_deg, b.rotate_deg)), math.radians(lerp(a.shear_deg, b.shear_deg))
        scale, tx = lerp(a.scale, b.scale), lerp(a.tx, b.tx) * width
        r = torch.tensor([[math.cos(rot), -math.sin(rot)], [math.sin(rot), math.cos(rot)]], dtype=torch.float64)
        sh = torch.tensor([[1.0, math.tan(shear)], [0.0, 1.0]], dtype=torch.float64)
        linear = r @ sh / scale  # zoom in for scale > 1
        out.append(torch.cat((linear, torch.tensor([[tx], [0.0]], dtype=torch.float64)), dim=1))
    return torch.stack(out).float()


def apply_camera(frames: torch.Tensor, params: CameraParams) -> torch.Tensor:
    """frames [N, H, W, C] → the same scene seen by the moving camera [N, H, W, C]."""
    n, h, w, c = frames.shape
    x = frames.permute(0, 3, 1, 2)
    pad = (params.pad_left, params.pad_right, params.pad_top, params.pad_bottom)
    if max(pad) >= min(h, w):  # reflection padding needs pad < size
        x = F.pad(x, pad, mode="replicate")
    else:
        x = F.pad(x, pad, mode="reflect")
    px, py = pixel_grid(h, w)
    ox, oy = px - (w - 1) / 2, py - (h - 1) / 2  # offsets from the view centre
    m = view_matrices(params, n, w)  # [N, 2, 3]
    cx, cy = params.pad_left + (w - 1) / 2, params.pad_top + (h - 1) / 2  # original centre in the canvas
    src_x = cx + m[:, 0, 0, None, None] * ox + m[:, 0, 1, None, None] * oy + m[:, 0, 2, None, None]
    src_y = cy + m[:, 1, 0, None, None] * ox + m[:, 1, 1, None, None] * oy + m[:, 1, 2, None, None]
    out = sample_at(x, src_x, src_y, padding_mode="reflection")
    return out.permute(0, 2, 3, 1).contiguous()
