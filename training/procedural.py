"""Procedural sources for tests and demos: textured backgrounds and soft-edged moving shapes."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .warp import pixel_grid, sample_at


def torch_generator(rng: np.random.Generator) -> torch.Generator:
    """A torch generator seeded from ``rng`` (keeps one seed stream per clip)."""
    return torch.Generator().manual_seed(int(rng.integers(0, 2**62)))


def smooth_noise(gen: torch.Generator, channels: int, height: int, width: int, octaves: int = 4) -> torch.Tensor:
    """Multi-octave value noise [C, H, W], roughly in [0, 1] (coarse octaves weigh more)."""
    out = torch.zeros(channels, height, width)
    total = 0.0
    for o in range(octaves):
        cells = 2 ** (o + 1)
        coarse = torch.rand(1, channels, cells + 1, cells + 1, generator=gen)
        layer = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)[0]
        weight = 0.5 ** o
        out += weight * layer
        total += weight
    return (out / total).clamp(0, 1)


def texture_image(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """A coloured texture [H, W, 3] in [0, 1]: two random colours mixed by smooth noise, plus grain."""
    colours = torch.rand(2, 3, generator=gen)
    mix = smooth_noise(gen, 1, height, width)[0]  # [H, W]
    stripes_freq = 2 + 6 * float(torch.rand(1, generator=gen))
    x, y = pixel_grid(height, width)
    stripes = 0.5 + 0.5 * torch.sin(2 * math.pi * stripes_freq * (x / width + 0.3 * y / height))
    mix = (0.75 * mix + 0.25 * stripes).clamp(0, 1)
    img = colours[0] * mix[..., None] + colours[1] * (1 - mix[..., None])
    grain = 0.04 * (torch.rand(height, width, 1, generator=gen) - 0.5)
    return (img + grain).clamp(0, 1)


def procedural_background(rng: np.random.Generator, frames: int, height: int, width: int) -> torch.Tensor:
    """A textured background clip [N, H, W, 3] with a slow drift (camera motion comes later)."""
    gen = torch_generator(rng)
    tex = texture_image(gen, height, width).permute(2, 0, 1)[None]  # [1, 3, H, W]
    drift = rng.uniform(-0.03, 0.03, size=2) * (width, height)  # total drift over the clip, pixels
    x, y = pixel_grid(height, width)
    t = torch.linspace(0, 1, frames).view(-1, 1, 1)
    src_x, src_y = x + t * float(drift[0]), y + t * float(drift[1])
    out = sample_at(tex.expand(frames, -1, -1, -1), src_x, src_y, padding_mode="reflection")
    return out.permute(0, 2, 3, 1).contiguous()


def _shape_sdf(rng: np.random.Generator, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Signed distance (negative inside) of a random union of 1–3 ellipses/rounded boxes, in unit coords."""
    sdf = torch.full_like(x, float("inf"))
    for _ in range(int(rng.integers(1, 4))):
        cx, cy = rng.uniform(-0.15, 0.15), rng.uniform(-0.15, 0.15)
        rx, ry = rng.uniform(0.45, 0.85), rng.uniform(0.6, 0.85)
        dx, dy = (x - cx) / rx, (y - cy) / ry
        if rng.random() < 0.5:  # ellipse
            part = (torch.sqrt(dx ** 2 + dy ** 2) - 1) * min(rx, ry)
        else:  # rounded box
            qx, qy = dx.abs() - 0.7, dy.abs() - 0.7
            outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
            part = (outside + torch.clamp(torch.maximum(qx, qy), max=0) - 0.3) * min(rx, ry)
        sdf = torch.minimum(sdf, part)
    return sdf


def procedural_foreground(rng: np.random.Generator, frames: int, height: int,
                          width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A textured soft-edged shape moving on a smooth path → (rgb [N, H, W, 3], alpha [N, H, W]).

    The object is 35–60 % of the frame high; its lowest point stays high enough that a
    pseudo-shadow of up to 30 % of its height fits below it.
    """
    gen = torch_generator(rng)
    obj_h = rng.uniform(0.35, 0.6) * height
    obj_w = min(rng.uniform(0.4, 1.0) * obj_h, 0.45 * width)
    size = int(math.ceil(max(obj_h, obj_w))) + 4
    # object sprite on a square canvas in unit coords [-0.5, 0.5] scaled by (obj_w, obj_h)
    sx, sy = pixel_grid(size, size)
    ux = (sx - (size - 1) / 2) / obj_w * 2
    uy = (sy - (size - 1) / 2) / obj_h * 2
    sdf = _shape_sdf(rng, ux, uy)  # [S, S]
    softness = rng.uniform(0.01, 0.04)
    sprite_alpha = torch.sigmoid(-sdf / softness)
    sprite_rgb = texture_image(gen, size, size)

    # smooth path: eased move between two points plus a small bob
    bottom_lo, bottom_hi = 0.55 * height, 0.97 * height - 0.3 * obj_h
    x0, x1 = rng.uniform(0.25, 0.75, size=2) * width
    base_y = rng.uniform(bottom_lo, max(bottom_lo, bottom_hi)) - obj_h / 2  # centre y
    bob_amp, bob_freq, phase = rng.uniform(0, 0.03) * height, rng.uniform(0.5, 2), rng.uniform(0, 2 * math.pi)
    t = torch.linspace(0, 1, frames)
    ease = t * t * (3 - 2 * t)
    cx = x0 + (x1 - x0) * ease
    cy = base_y - bob_amp * (0.5 + 0.5 * torch.sin(2 * math.pi * bob_freq * t + phase))
    x, y = pixel_grid(height, width)
    src_x = x[None] - cx.view(-1, 1, 1) + (size - 1) / 2
    src_y = y[None] - cy.view(-1, 1, 1) + (size - 1) / 2
    alpha = sample_at(sprite_alpha.expand(frames, 1, -1, -1), src_x, src_y, padding_mode="zeros")[:, 0]
    rgb = sample_at(sprite_rgb.permute(2, 0, 1).expand(frames, -1, -1, -1), src_x, src_y, padding_mode="border")
    alpha = alpha.clamp(0, 1)  # [N, H, W]; rgb [N, 3, H, W] is defined everywhere (alpha decides)
    return rgb.permute(0, 2, 3, 1).contiguous(), alpha.contiguous()
