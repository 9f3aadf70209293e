"""Frame geometry that conditioning, decoding and the layer writer share: size and length.

The working clip is the source stretched to the working size and mirror-padded in time to
4n+1 frames; decoding and writing undo exactly that (crop the padding, resize back), so every
path uses the same resize and the same padding rule.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def resize_frames(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[N, H, W, C] → [N, height, width, C], antialiased bilinear (either direction)."""
    if frames.shape[1:3] == (height, width):
        return frames
    x = frames.movedim(-1, 1)
    x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return x.movedim(1, -1)


def padded_length(frames: int) -> int:
    """Smallest 4n+1 ≥ frames (Wan's VAE compresses time by 4 after the first frame)."""
    return 4 * math.ceil((frames - 1) / 4) + 1


def mirror_index(frames: int, index: torch.Tensor) -> torch.Tensor:
    """Frame indices of the mirror-padded clip [t] → the source frames [t] they show."""
    if frames == 1:
        return torch.zeros_like(index)
    period = 2 * (frames - 1)
    t = index % period
    return torch.where(t < frames, t, period - t)


def mirror_pad_time(video: torch.Tensor, length: int) -> torch.Tensor:
    """Pad [N, …] to ``length`` frames by reflecting in time (… N-2, N-1, N-2, …); never drops frames."""
    n = video.shape[0]
    if length < n:
        raise ValueError(f"cannot pad {n} frames down to {length}")
    if length == n:
        return video
    return video[mirror_index(n, torch.arange(length))]


def crop_and_restore(frames: torch.Tensor, source_frames: int, height: int, width: int) -> torch.Tensor:
    """Working-size [Np, h, w, C] → the source's [source_frames, height, width, C] (padding cropped)."""
    return resize_frames(frames[:source_frames], height, width)
