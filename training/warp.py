"""Resampling frames at pixel coordinates (shared by camera motion and pseudo-shadows)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_grid(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates: x [H, W], y [H, W] (0 … W-1, 0 … H-1)."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing="ij")
    return x, y


def sample_at(frames: torch.Tensor, src_x: torch.Tensor, src_y: torch.Tensor,
              padding_mode: str = "zeros") -> torch.Tensor:
    """Bilinear lookup: frames [N, C, Hs, Ws] at pixel coords src_x/src_y [N, H, W] → [N, C, H, W].

    ``padding_mode`` as in ``grid_sample`` (``zeros`` for mattes, ``reflection`` for images).
    """
    hs, ws = frames.shape[-2:]
    gx = (src_x + 0.5) / ws * 2 - 1  # align_corners=False convention
    gy = (src_y + 0.5) / hs * 2 - 1
    grid = torch.stack((gx, gy), dim=-1).to(frames.dtype)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


def gaussian_blur(frames: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, C, H, W] (sigma in pixels; ≤ 0 returns the input)."""
    if sigma <= 0:
        return frames
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=frames.dtype)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = frames.shape[1]
    x = F.conv2d(F.pad(frames, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1),
                 groups=c)
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1),
                    groups=c)
