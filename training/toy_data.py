"""The toy world's clips: 128×128, 17 frames (5 latent frames), procedural, with ground truth.

Training draws clip indices from seed ``TRAIN_SEED``; held-out clips come from
``TRAIN_SEED + HELD_OUT_SEED_OFFSET`` and are never trained on (docs/toy_world.md). A share of
clips carries a second object, with its own shadow, marked keep (trimask 0): it belongs to the
clean plate.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from omnimatte_core.quantise import round_to_8bit

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

    q = round_to_8bit
    keep = clip.keep_mask if clip.keep_mask is not None else torch.zeros_like(clip.object_mask)
    return ToyClip(q(clip.video), clip.object_mask.float(), keep.float(), q(clip.gt_alpha), q(clip.object_alpha),
                   q(clip.background), fps, dict(meta if meta is not None else clip.meta))


@dataclass
class TwoObjectScene:
    """A held-out clip with two objects, each casting a shadow, and each object's ground truth.

    Object 0 is in front (the clip's removed object); object 1 behind it (the clip's kept one).
    Object 1's visible ground truth is hidden where object 0 covers it.
    """

    video: torch.Tensor  # [N, H, W, 3], 8-bit values
    masks: list[torch.Tensor]  # 2 × [N, H, W] float {0, 1}: the objects alone (no shadow)
    gt_alphas: torch.Tensor  # [2, N, H, W]: each object ∪ its shadow, as visible
    object_alphas: torch.Tensor  # [2, N, H, W]: each object alone
    plate: torch.Tensor  # [N, H, W, 3]: both objects and their shadows removed
    index: int

    def shadow_region(self, k: int) -> torch.Tensor:
        """bool [N, H, W]: object k's shadow where no object is."""
        return (self.gt_alphas[k] >= 0.1) & (self.object_alphas.amax(0) < 0.05)

    def object_region(self, k: int) -> torch.Tensor:
        return self.object_alphas[k] >= 0.5

    def other_region(self, k: int) -> torch.Tensor:
        """bool [N, H, W]: the other object and its shadow, where object k's own ground truth is 0."""
        return (self.gt_alphas[1 - k] >= 0.1) & (self.gt_alphas[k] < 0.02)

    @property
    def overlap(self) -> torch.Tensor:
        """bool [N, H, W]: where both layers are present (re-compositing need not give the input there)."""
        return (self.gt_alphas >= 0.02).all(0)


def two_object_scenes(count: int, seed: int = TRAIN_SEED) -> list[TwoObjectScene]:
    """The first ``count`` held-out clips with a kept object and a shadowed front object."""
    stream, scenes, index = held_out_stream(seed), [], 0
    while len(scenes) < count:
        clip = stream.clip(index)
        if clip.kept is not None and clip.meta["shadow"] is not None:
            scenes.append(_two_object_scene(clip, index))
        index += 1
    return scenes


def _two_object_scene(clip: Clip, index: int) -> TwoObjectScene:
    q = round_to_8bit
    front, behind = clip.object_alpha, clip.kept.object_alpha
    behind_visible = clip.kept.gt_alpha * (1 - front)
    return TwoObjectScene(q(clip.video), [clip.object_mask.float(), clip.keep_mask.float()],
                          torch.stack((clip.gt_alpha, behind_visible)), torch.stack((front, behind * (1 - front))),
                          q(clip.kept.plate), index)


def long_held_out_clip(index: int, frames: int, seed: int = TRAIN_SEED):
    """A held-out toy clip of any 4n+1 length (the toy world's motion and shadows, just longer): for
    temporal windows, whose toy-scale window is the 17 frames the models were trained on."""
    config = replace(TOY_CONFIG, frames=frames, seed=seed + HELD_OUT_SEED_OFFSET)
    stream = SyntheticClips(config, ProceduralForegrounds(), ProceduralBackgrounds(CAPTION))
    return as_toy_clip(stream.clip(index), meta={"index": index, "frames": frames})
