"""Synthetic clips → what the branch forward needs: latents, packed trimask, features."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from omnimatte_core.conditioning import latent_trimask  # the packing OmnimatteConditioning uses

from .dataset import Clip
from .features import ClipVisionFeatures, TextEmbeddings


@dataclass
class EncodedClip:
    video_latent: torch.Tensor  # [1, 16, T, h, w] VAE space (concat_cond normalises it)
    background: torch.Tensor  # [1, 16, T, h, w] model space (process_latent_in applied): bg row x0
    alpha: torch.Tensor  # [1, 16, T, h, w] model space: alpha row x0
    concat_mask: torch.Tensor  # [1, 4, T, h, w] packed trimask on the latent grid (as OmnimatteConditioning)
    context: torch.Tensor  # [1, L, 4096]
    clip_fea: torch.Tensor | None  # [1, 257, 1280]; None for a T2V-type base
    effect_cells: torch.Tensor | None = None  # [1, 1, T, h, w] 1 where the clip's effect (shadow) lies; None in old caches


def latent_cells(region: torch.Tensor) -> torch.Tensor:
    """bool [4n+1, H, W] pixel region → [1, 1, n+1, H/8, W/8]: 1 where any pixel of a latent cell is in it.

    Wan's VAE codes frame 0 alone and then frames in fours, 8×8 pixels a cell: the same grid as the latents.
    """
    n = region.shape[0]
    if (n - 1) % 4:
        raise ValueError(f"the region needs 4n+1 frames, got {n}")
    spatial = F.max_pool2d(region.float().unsqueeze(1), 8).squeeze(1)  # [4n+1, H/8, W/8]
    rest = spatial[1:].reshape(-1, 4, *spatial.shape[1:]).amax(dim=1)  # [n, H/8, W/8]
    return torch.cat((spatial[:1], rest))[None, None]


def vae_encode(vae, frames: torch.Tensor) -> torch.Tensor:
    """[N, H, W, 3] in [0, 1] → Wan latent [1, 16, T, h, w] (float32, CPU)."""
    with torch.no_grad():
        return vae.encode(frames[..., :3]).float().cpu()


def encode_clip(clip: Clip, index: int, vae, latent_format, text: TextEmbeddings,
                clip_vision: ClipVisionFeatures | None) -> EncodedClip:
    """VAE-encode video, clean background and alpha (replicated to 3 channels), gather features."""
    alpha_rgb = clip.gt_alpha[..., None].expand(-1, -1, -1, 3)
    return EncodedClip(
        video_latent=vae_encode(vae, clip.video),
        background=latent_format.process_in(vae_encode(vae, clip.background)),
        alpha=latent_format.process_in(vae_encode(vae, alpha_rgb)),
        concat_mask=latent_trimask(clip.trimask),
        context=text.tokens(clip.caption),
        clip_fea=clip_vision.features(clip.video[0], index) if clip_vision is not None else None,
        effect_cells=latent_cells(clip.shadow_region))


def save_encoded(encoded: EncodedClip, path) -> None:
    """One EncodedClip as ``.safetensors`` (absent CLIP features are simply not stored)."""
    from pathlib import Path

    from safetensors.torch import save_file

    tensors = {k: v.contiguous() for k, v in vars(encoded).items() if v is not None}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path) + ".part")
    Path(str(path) + ".part").replace(path)


def load_encoded(path) -> EncodedClip:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    return EncodedClip(**{name: tensors.get(name) for name in EncodedClip.__dataclass_fields__})
