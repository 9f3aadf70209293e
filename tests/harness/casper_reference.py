"""Gen-Omnimatte's Casper conditioning, written here from its documented rules (not copied code).

What isl-org/gen-omnimatte-public feeds the Wan2.1-Fun Casper transformer (config/default_wan.py,
videox_fun/utils/utils.py, pipeline_wan_fun_inpaint.py), on plain tensors:

- each object mask's first channel area-resized to the working size, object where ≥ 240/255,
  dilated with an 11 × 11 square footprint;
- trimask 255 remove / 127 neutral / 0 keep, divided by 255, then quantised (> 0.75 → 1,
  0.25–0.75 → 127/255, < 0.25 → 0);
- frame 0 repeated 4× before packing 4 frames per latent frame, 1 − mask, resized to the latent grid
  by trilinear interpolation (frame 0 on its own);
- clips padded in time by appending the clip reversed (the last frame repeated) to at least the
  81-frame window, to 4n+1 frames with n odd, at most 197 frames;
- temporal multidiffusion: 21-latent-frame windows, stride 16 video frames = 4 latent frames of
  overlap, linear ramps 0.2 … 0.8 over it, the last window moved back to end at the clip's end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

THRESHOLD_U8 = 240
DILATE_WIDTH = 11
NEUTRAL = 127.0 / 255.0
WINDOW_LATENTS = 21
STRIDE_FRAMES = 16


def object_mask(mask_u8: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[N, H, W] values 0…255 → bool [N, h, w]."""
    resized = F.interpolate(mask_u8.float().unsqueeze(0), size, mode="area")[0]
    return resized >= THRESHOLD_U8


def dilate(mask: torch.Tensor, width: int = DILATE_WIDTH) -> torch.Tensor:
    """Binary dilation by a width × width square (odd width: centred)."""
    return F.max_pool2d(mask.float().unsqueeze(1), width, stride=1, padding=width // 2).squeeze(1) > 0.5


def trimask(remove: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """bool masks [N, h, w] (already dilated) → [N, h, w] in {0, 127/255, 1}; removal wins."""
    out = torch.full(remove.shape, 127.0)
    if keep is not None:
        out[keep] = 0.0
    out[remove] = 255.0
    return quantise(out / 255.0)


def quantise(mask: torch.Tensor) -> torch.Tensor:
    mask = torch.where(mask > 0.75, 1.0, mask)
    mask = torch.where((mask <= 0.75) & (mask >= 0.25), NEUTRAL, mask)
    return torch.where(mask < 0.25, 0.0, mask)


def padded_length(frames: int, min_length: int = 81, max_length: int = 197) -> int:
    length = (frames // 4) * 4 + 1
    if length < frames:
        length += 4
    if (length // 4) % 2 == 0:
        length += 4
    return max(min_length, min(length, max_length))


def pad_time(video: torch.Tensor, length: int) -> torch.Tensor:
    """[N, …] → [length, …] by appending the sequence reversed until long enough."""
    video = video[:length]
    while video.shape[0] < length:
        video = torch.cat([video, video.flip(0)])[:length]
    return video


def mask_channels(trimask_frames: torch.Tensor, latent_hw: tuple[int, int]) -> torch.Tensor:
    """[4k+1, H, W] → the model's 4 mask channels [1, 4, k+1, h, w] (1 − mask, trilinear to the latent grid)."""
    _, h, w = trimask_frames.shape
    packed = torch.cat([trimask_frames[:1].repeat(4, 1, 1), trimask_frames[1:]])  # [4(k+1), H, W]
    packed = packed.view(1, packed.shape[0] // 4, 4, h, w).transpose(1, 2)  # [1, 4, k+1, H, W]
    inverted = 1.0 - packed
    first = F.interpolate(inverted[:, :, :1], size=(1, *latent_hw), mode="trilinear", align_corners=False)
    if inverted.shape[2] == 1:
        return first
    rest = F.interpolate(inverted[:, :, 1:], size=(inverted.shape[2] - 1, *latent_hw), mode="trilinear",
                         align_corners=False)
    return torch.cat([first, rest], dim=2)


def windows(total: int, length: int = WINDOW_LATENTS, stride_frames: int = STRIDE_FRAMES) -> list[tuple[int, int]]:
    """(begin, end) latent frames of each multidiffusion window."""
    overlap = stride_frames // 4
    spans, begin = [], 0
    while begin < total:
        end = min(begin + length, total)
        if end - begin < length:
            begin = max(0, end - length)
        spans.append((begin, end))
        begin = end - overlap
        if end >= total:
            break
    return spans
