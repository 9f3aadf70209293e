"""Synthetic training clips: foreground over background with pseudo-shadow and camera motion.

``SyntheticClips(config, fg, bg).clip(index)`` is a pure function of (seed, index): the same
pair always gives the same clip, whichever process or step asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from omnimatte_core import trimask as tm

from .camera import CameraParams, apply_camera, sample_camera
from .shadow import ShadowParams, render_shadow, sample_shadow_params
from .sources import BackgroundSource, ForegroundSource

EFFECT_THRESHOLD = 0.1  # GT alpha binarisation for the effect region (shadows are 30–70 % opaque)


@dataclass(frozen=True)
class DataConfig:
    height: int = 480
    width: int = 832
    frames: int = 81
    seed: int = 0
    shadow_prob: float = 0.8  # share of clips with a pseudo-shadow (ours; the paper gives none)
    camera_prob: float = 0.5  # share of clips with camera motion (ours)
    keep_prob: float = 0.0  # share of clips with a second object (and shadow) marked keep (trimask 0)

    def __post_init__(self):
        if (self.frames - 1) % 4 or self.frames < 1:
            raise ValueError(f"frames must be 4n+1 (Wan's VAE), got {self.frames}; use e.g. 81, 49, 17 or 5")
        if self.height % 16 or self.width % 16:
            raise ValueError(f"height and width must be multiples of 16 (VAE 8 × patch 2), got "
                             f"{self.height}×{self.width}; use e.g. 480×832")


@dataclass
class KeptObject:
    """Ground truth of the second (kept, behind) object: it makes the toy world's two-object scenes."""

    object_alpha: torch.Tensor  # [N, H, W]
    gt_alpha: torch.Tensor  # [N, H, W] object ∪ its shadow
    plate: torch.Tensor  # [N, H, W, 3] the background without it (or its shadow): both objects removed


@dataclass
class Clip:
    video: torch.Tensor  # [N, H, W, 3] the composite the model sees
    background: torch.Tensor  # [N, H, W, 3] clean background (camera motion applied, no shadow)
    object_alpha: torch.Tensor  # [N, H, W]
    shadow_alpha: torch.Tensor  # [N, H, W] in [0, opacity]
    gt_alpha: torch.Tensor  # [N, H, W] object ∪ shadow
    object_mask: torch.Tensor  # bool [N, H, W] binarised object alpha (no shadow)
    trimask: torch.Tensor  # [N, H, W] {0.5, 1}: dilated object mask as Casper's trimask
    caption: str
    meta: dict = field(default_factory=dict)
    keep_mask: torch.Tensor | None = None  # bool [N, H, W] the second object to keep, if any
    kept: KeptObject | None = None  # the kept object's own ground truth, if any

    @property
    def removed_alpha(self) -> torch.Tensor:
        """[N, H, W] what removal takes away: the object ∪ its shadow (= gt_alpha)."""
        return self.gt_alpha

    @property
    def shadow_region(self) -> torch.Tensor:
        """bool [N, H, W]: the effect region Me = binarised GT alpha outside the dilated object mask."""
        return tm.binarize(self.gt_alpha, EFFECT_THRESHOLD) & ~(self.trimask >= 1.0)


def composite(fg_rgb: torch.Tensor, object_alpha: torch.Tensor, background: torch.Tensor,
              shadow_alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shadow darkens the background, then the foreground goes on top → (video, GT alpha).

    GT alpha = 1 − (1 − α_obj)(1 − α_shadow), so V = α·F + (1 − α)·B holds with F black in
    the shadow-only region.
    """
    shadowed = background * (1 - shadow_alpha[..., None])
    a = object_alpha[..., None]
    video = fg_rgb * a + shadowed * (1 - a)
    gt_alpha = 1 - (1 - object_alpha) * (1 - shadow_alpha)
    return video.clamp(0, 1), gt_alpha.clamp(0, 1)


class SyntheticClips:
    def __init__(self, config: DataConfig, foregrounds: ForegroundSource, backgrounds: BackgroundSource):
        self.config = config
        self.foregrounds = foregrounds
        self.backgrounds = backgrounds

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, index])

    def clip(self, index: int) -> Clip:
        c = self.config
        rng = self.rng(index)
        fg = self.foregrounds.sample(rng, c.frames, c.height, c.width)
        bg = self.backgrounds.sample(rng, c.frames, c.height, c.width)
        shadow_params: ShadowParams | None = sample_shadow_params(rng) if rng.random() < c.shadow_prob else None
        camera: CameraParams | None = sample_camera(rng, c.height, c.width) if rng.random() < c.camera_prob else None
        background = apply_camera(bg.rgb, camera) if camera is not None else bg.rgb
        keep_mask = kept = None
        if c.keep_prob > 0 and rng.random() < c.keep_prob:
            background, keep_mask, meta_keep, kept = self._add_kept_object(rng, background)
        shadow = render_shadow(fg.alpha, shadow_params) if shadow_params is not None else torch.zeros_like(fg.alpha)
        video, gt_alpha = composite(fg.rgb, fg.alpha, background, shadow)
        object_mask = tm.binarize(fg.alpha)
        trimask = tm.build_trimask(object_mask, keep_mask, tm.dilation_for_size(c.height, c.width))
        meta = {"index": index, "seed": c.seed, "foreground": fg.name, "background": bg.name,
                "shadow": shadow_params.to_dict() if shadow_params else None,
                "camera": camera.to_dict() if camera else None,
                "keep": meta_keep if keep_mask is not None else None}
        return Clip(video, background, fg.alpha, shadow, gt_alpha, object_mask, trimask, bg.caption, meta,
                    keep_mask, kept)

    def _add_kept_object(self, rng: np.random.Generator, background: torch.Tensor):
        """A second object with its own shadow, composited into the background: it stays in the clean plate."""
        c = self.config
        fg = self.foregrounds.sample(rng, c.frames, c.height, c.width)
        params = sample_shadow_params(rng)
        shadow = render_shadow(fg.alpha, params)
        scene, gt_alpha = composite(fg.rgb, fg.alpha, background, shadow)
        kept = KeptObject(fg.alpha, gt_alpha, background)
        return scene, tm.binarize(fg.alpha), {"foreground": fg.name, "shadow": params.to_dict()}, kept
