"""Temporal windows for clips longer than the models were trained on (docs/architecture.md).

At every sampler step the model input [B, C, T, h, w] (noisy latent with the video latent and
packed trimask already concatenated by ComfyUI) is cut in time into overlapping windows of
``length`` latent frames; each window runs the Wan forward on its own, so RoPE positions restart
at 0 and attention never spans more than a window; the predictions are blended per latent frame
with weights that ramp linearly across each overlap, so every frame gets one prediction.

Latent frame 0 of the clip encodes one video frame, every later one four (Wan's causal VAE). A
window that starts later begins on a four-frame latent, which the model reads as its first frame, a
still image: on the toy world the error of exactly those four frames doubles (benchmarks.long_video,
docs/performance.md). We keep the latents as they are (no re-encoding per window, no borrowed anchor
frame) and give that first latent frame weight 0 in the blend: the window before covers it, so
windows must overlap by at least one latent frame (4 video frames). Over the rest of the overlap the
weights ramp linearly and sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

TRAINED_FRAMES = 81  # Casper's window: 81 video frames = 21 latent frames
DEFAULT_OVERLAP_FRAMES = 32  # 8 latent frames (39 % of a window; docs/performance.md has the measurement)


def latent_frames(video_frames: int) -> int:
    """Video frames (4n+1) → latent frames (n+1)."""
    return (video_frames - 1) // 4 + 1


@dataclass(frozen=True)
class WindowPlan:
    """Windows in latent frames: ``length`` each, overlapping by at least ``overlap``."""

    length: int
    overlap: int

    @classmethod
    def from_video_frames(cls, window_frames: int, overlap_frames: int) -> "WindowPlan | None":
        """A plan from the node's settings (video frames), or None for one window (``window_frames`` 0)."""
        if window_frames == 0:
            return None
        if window_frames < 9 or (window_frames - 1) % 4:
            raise ValueError(f"window_frames must be 0 (one window) or 4n+1 of at least 9, e.g. 81 or 49; got "
                             f"{window_frames}")
        length = latent_frames(window_frames)
        overlap = -(-overlap_frames // 4)  # whole latent frames, rounded up
        if not 1 <= overlap < length:
            raise ValueError(f"window_overlap ({overlap_frames} frames) must be at least 4 (a window's first latent "
                             f"frame is left to the window before) and less than the window ({window_frames} "
                             "frames)")
        return cls(length, overlap)

    def starts(self, total: int) -> list[int]:
        """First latent frame of each window over ``total`` latent frames; the last ends at ``total``."""
        if total <= self.length:
            return [0]
        stride = max(1, self.length - self.overlap)
        starts = list(range(0, total - self.length, stride))
        return starts + [total - self.length]

    def count(self, total: int) -> int:
        return len(self.starts(total))


def blend_weights(start: int, length: int, total: int, overlap: int) -> torch.Tensor:
    """Weights [length] of a window's frames.

    A window after the first: its first frame 0 (the model reads it as a still image), then j/overlap
    for the next overlap − 1 frames. A window before the last: (overlap − j)/overlap over its last
    ``overlap`` frames. Where two windows meet by exactly ``overlap`` frames the weights sum to 1;
    the clip's own ends are not faded.
    """
    weights = torch.ones(length)
    ramp = torch.arange(overlap, dtype=torch.float32) / overlap  # 0, 1/O, …, (O−1)/O
    if start > 0:
        weights[:overlap] = ramp
    if start + length < total:
        weights[-overlap:] = torch.minimum(weights[-overlap:], 1.0 - ramp)
    return weights


def run_windowed(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, plan: WindowPlan,
                 between: Callable[[], None] | None = None) -> torch.Tensor:
    """``forward`` on each time window of x [B, C, T, h, w] → blended output [B, C', T, h, w].

    ``between`` runs before each window (cancel checks). One window: ``forward(x)`` unchanged.
    """
    total = x.shape[2]
    starts = plan.starts(total)
    if len(starts) == 1:
        return forward(x)
    out = weight_sum = None
    for start in starts:
        if between is not None:
            between()
        length = min(plan.length, total)
        y = forward(x[:, :, start:start + length])
        w = blend_weights(start, length, total, plan.overlap).to(y)[None, None, :, None, None]
        if out is None:
            out = torch.zeros((*y.shape[:2], total, *y.shape[3:]), dtype=y.dtype, device=y.device)
            weight_sum = torch.zeros(total, dtype=y.dtype, device=y.device)
        out[:, :, start:start + length] += y * w
        weight_sum[start:start + length] += w.flatten()
    return out / weight_sum[None, None, :, None, None]
