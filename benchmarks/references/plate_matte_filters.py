"""Test-only reference: Alpha from Clean Plate as it was filtered before the separable filters.

The old dilation was one (2r+1)² ``max_pool2d`` and the old box filter one (2r+1)² ``avg_pool2d``,
both O(r²) per pixel, and the guided filter ran in float32. ``old_filters`` swaps them back into
``omnimatte_core.plate_matte`` (``erode`` and the chunk matte call them by name), so ``plate_matte``
under it gives the former output. ``scene`` makes inputs of any size. Nothing here is used by the pack; the tests and
``benchmarks.plate_matte`` compare against it.
"""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Iterator
from unittest import mock

import torch
import torch.nn.functional as F


def reference_dilate(mask: torch.Tensor, px: int) -> torch.Tensor:
    """[n, H, W] → the max over each pixel's (2px+1)² square, clipped at the borders."""
    if px <= 0:
        return mask
    return F.max_pool2d(mask.unsqueeze(1), 2 * px + 1, stride=1, padding=px).squeeze(1)


def reference_box(x: torch.Tensor, r: int) -> torch.Tensor:
    """[n, H, W] → the mean over each pixel's (2r+1)² square of the pixels that exist."""
    return F.avg_pool2d(x.unsqueeze(1), 2 * r + 1, stride=1, padding=r, count_include_pad=False).squeeze(1)


def reference_guided_filter(guide: torch.Tensor, source: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """He et al.'s guided filter in the inputs' dtype, on the pooled box filter."""
    mean_i, mean_p = reference_box(guide, r), reference_box(source, r)
    a = (reference_box(guide * source, r) - mean_i * mean_p) / (reference_box(guide * guide, r) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return reference_box(a, r) * guide + reference_box(b, r)


@contextlib.contextmanager
def old_filters(plate_matte: ModuleType) -> Iterator[None]:
    """Within: ``plate_matte``'s dilation, box and guided filter are the former ones above."""
    with mock.patch.object(plate_matte, "dilate", reference_dilate), \
            mock.patch.object(plate_matte, "box", reference_box), \
            mock.patch.object(plate_matte, "guided_filter", reference_guided_filter):
        yield


def exact_former_matte(plate_matte: ModuleType, video: torch.Tensor, plate: torch.Tensor, obj: torch.Tensor,
                       settings) -> torch.Tensor:
    """The former formulation in float64, one chunk (≤ 16 frames): [n, H, W], today's output less its rounding."""
    with old_filters(plate_matte):
        alpha, _ = plate_matte._chunk_matte(video.double(), plate.double(), obj.double(), settings)
    return plate_matte.temporal_average(alpha, settings.temporal_frames).clamp(0.0, 1.0)


def scene(n: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A noisy textured plate [n, h, w, 3], frames with a dark object and a 40 % shadow beside it, object mask.

    The object (a quarter of each side) sits at the centre and the plate noise (σ 0.01) gives the
    noise floor and the guided filter something to do; a second object touches the top-right corner.
    """
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    texture = torch.stack((0.4 + 0.3 * x, 0.5 + 0.2 * torch.sin(9 * y + 4 * x), 0.6 - 0.2 * x), -1)  # [h, w, 3]
    plate = (texture + 0.01 * torch.randn(n, h, w, 3, generator=g)).clamp(0, 1)
    obj, shadow = torch.zeros(n, h, w), torch.zeros(n, h, w)
    top, left, dh, dw = 3 * h // 8, 3 * w // 8, max(h // 4, 1), max(w // 4, 1)
    obj[:, top:top + dh, left:left + dw] = 1.0
    obj[:, :max(h // 16, 1), w - max(w // 16, 1):] = 1.0
    shadow[:, top + dh // 2:top + dh + dh // 4, left + dw // 2:left + dw + dw // 2] = 1.0
    video = plate * (1 - 0.4 * (shadow * (1 - obj))[..., None]) + 0.005 * torch.randn(n, h, w, 3, generator=g)
    video = torch.where(obj[..., None] > 0, torch.tensor([0.1, 0.1, 0.15]), video).clamp(0, 1)
    return video, plate, obj
