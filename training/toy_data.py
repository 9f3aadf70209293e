"""The toy world's clips: 128×128, 17 frames (5 latent frames), procedural, with ground truth.

Training draws clip indices from seed ``TRAIN_SEED``; held-out clips come from
``TRAIN_SEED + HELD_OUT_SEED_OFFSET`` and are never trained on (docs/toy_world.md). A share of
clips carries a second object, with its own shadow, marked keep (trimask 0): it belongs to the
clean plate.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .common import HELD_OUT_SEED_OFFSET
from .dataset import Clip, DataConfig, SyntheticClips
from .sources import ProceduralBackgrounds, ProceduralForegrounds

HEIGHT = WIDTH = 128
FRAMES = 17
TRAIN_SEED = 0
CAPTION = "a video of a textured background."
TOY_CONFIG = DataConfig(height=HEIGHT, width=WIDTH, frames=FRAMES, seed=TRAIN_SEED, shadow_prob=0.8,
                        camera_prob=0.3, keep_prob=0.2)


def train_clips(seed: int = TRAIN_SEED) -> SyntheticClips:
    return SyntheticClips(replace(TOY_CONFIG, seed=seed), ProceduralForegrounds(), ProceduralBackgrounds(CAPTION))


def held_out_stream(seed: int = TRAIN_SEED) -> SyntheticClips:
    return train_clips(seed + HELD_OUT_SEED_OFFSET)


def held_out_clips(count: int, seed: int = TRAIN_SEED, first: int = 0) -> list[Clip]:
    stream = held_out_stream(seed)
    return [stream.clip(i) for i in range(first, first + count)]


def as_toy_clip(clip: Clip, fps: float = 8.0, meta: dict | None = None):
    """A Clip → ``omnimatte_core.toy_clip.ToyClip`` in 8-bit, as the shipped demo clips (and any video) are."""
    from omnimatte_core.toy_clip import ToyClip

    q = lambda t: (t.float().clamp(0, 1) * 255).round() / 255  # noqa: E731
    keep = clip.keep_mask if clip.keep_mask is not None else torch.zeros_like(clip.object_mask)
    return ToyClip(q(clip.video), clip.object_mask.float(), keep.float(), q(clip.gt_alpha), q(clip.object_alpha),
                   q(clip.background), fps, dict(meta if meta is not None else clip.meta))
