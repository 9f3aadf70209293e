"""Casper's trimask and frame-count handling (DESIGN §3).

Pixel trimask: 1 = object to remove (dilated), 0.5 = neutral background (may change:
effects live here), 0 = other objects to keep. ComfyUI's ``WAN21.concat_cond`` computes
``1 − mask`` itself, so the packed trimask is passed as ``concat_mask``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

REFERENCE_DILATION_PX = 11  # Casper's dilation at 480×832
REFERENCE_AREA = 480 * 832


def dilation_for_size(height: int, width: int, reference_px: int = REFERENCE_DILATION_PX) -> int:
    """Scale the 11 px dilation with the working resolution (by the square root of the area)."""
    return max(1, round(reference_px * math.sqrt(height * width / REFERENCE_AREA)))


def binarize(mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """MASK [N, H, W] float → bool (1 = object)."""
    return mask >= threshold


CHUNK_FRAMES = 16  # frames the whole-clip mask work takes at once: a long clip's copies stay this small


def dilate(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Binary dilation of [N, H, W] bool by a (2p+1)² square."""
    if pixels <= 0:
        return mask
    out = torch.empty_like(mask)
    for start in range(0, mask.shape[0], CHUNK_FRAMES):
        part = mask[start:start + CHUNK_FRAMES].float().unsqueeze(1)
        out[start:start + CHUNK_FRAMES] = F.max_pool2d(part, 2 * pixels + 1, stride=1, padding=pixels).squeeze(1) > 0.5
    return out


def build_trimask(object_mask: torch.Tensor, keep_mask: torch.Tensor | None, dilation_px: int,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """bool [N, H, W] masks → float trimask [N, H, W] in {0, 0.5, 1}; the object wins overlaps.

    ``out`` [N, H, W] float receives it when given."""
    trimask = torch.full(object_mask.shape, 0.5) if out is None else out.fill_(0.5)
    if keep_mask is not None:
        trimask[keep_mask] = 0.0
    trimask[dilate(object_mask, dilation_px)] = 1.0
    return trimask


def pair_count(objects: int) -> int:
    """[background, alpha] pairs sampled for ``objects`` objects: one each, plus all-removed for ≥ 2."""
    return objects + 1 if objects > 1 else 1


def object_trimasks(objects: list[torch.Tensor], keep_mask: torch.Tensor | None, dilation_px: int) -> torch.Tensor:
    """One trimask per layer to sample: bool [N, H, W] per object → float [P, N, H, W].

    Object i's trimask marks object i remove (1), every other object keep (0) and the rest
    neutral (0.5). With two or more objects a last trimask removes them all at once: its
    background is the clean plate with every object and its effects gone (P = K + 1; P = 1
    for one object).
    """
    trimasks = torch.empty((pair_count(len(objects)), *objects[0].shape))  # built in place: never a list of copies, then a stack
    for i, obj in enumerate(objects):
        others = [o for j, o in enumerate(objects) if j != i] + ([keep_mask] if keep_mask is not None else [])
        keep = torch.stack(others).any(dim=0) if others else None
        build_trimask(obj, keep, dilation_px, out=trimasks[i])
    if len(objects) > 1:
        build_trimask(torch.stack(objects).any(dim=0), keep_mask, dilation_px, out=trimasks[-1])
    return trimasks


def pack_trimask(trimask: torch.Tensor) -> torch.Tensor:
    """[N=4k+1, H, W] → [1, 4, k+1, H, W]: frame 0 repeated to make 4(k+1) frames, grouped by 4."""
    n, h, w = trimask.shape
    if (n - 1) % 4:
        raise ValueError(f"the trimask needs 4n+1 frames, got {n}")
    frames = torch.cat((trimask[:1].expand(3, h, w), trimask), dim=0)  # [4(k+1), H, W]
    return frames.reshape(-1, 4, h, w).movedim(1, 0).unsqueeze(0)
