"""Casper's inputs from a video and an object mask (DESIGN §3), host-independent maths.

The video is resized (stretched) to the working size and mirror-padded in time to 4n+1
frames; the mask becomes the pixel trimask, packed to the latent grid. What the source
looked like is kept in :class:`SourceInfo` so decoding can give it back unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from . import frame_geometry as geometry
from . import trimask as tm
from .trimask import pair_count  # noqa: F401  (nodes call it as conditioning.pair_count)

SOURCE_KEY = "omnimatte_source"  # where a LATENT dict carries its SourceInfo
NO_ALPHA_KEY = "omnimatte_no_alpha"  # set on the alpha LATENT of a background-only run (no experts)
OBJECTS_KEY = "omnimatte_objects"  # the object names of a several-object latent, in layer order
LONGEST_WINDOW = 81  # frames Casper was trained on; the sampler runs longer clips in windows (windows.py)
VAE_STRIDE = 8  # Wan 2.1 VAE: 8× in space, 4× in time (after the first frame)
SIZE_MULTIPLE = 16  # VAE stride × patch size 2


@dataclass(frozen=True)
class SourceInfo:
    """The clip as the user gave it, so layers come back at its size and frame count."""

    frames: int
    height: int
    width: int
    padded_frames: int

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_latent(cls, latent: dict) -> "SourceInfo | None":
        info = latent.get(SOURCE_KEY)
        return cls(**info) if isinstance(info, dict) else None


@dataclass
class CasperInputs:
    """What Casper is conditioned on. The working-size video is not stored: ``working_frames`` makes
    any frames of it from the source on demand, so a long clip is never copied whole."""

    source_video: torch.Tensor  # [N, H, W, C ≥ 3] as given (not copied)
    height: int  # working size
    width: int
    trimask: torch.Tensor  # [P, Np, h, w] in {0, 0.5, 1}: one per [background, alpha] pair
    concat_mask: torch.Tensor  # [2P, 4, T_lat, h/8, w/8]: each pair's trimask on both of its rows
    source: SourceInfo

    @property
    def pairs(self) -> int:
        return self.trimask.shape[0]

    def working_frames(self, index: torch.Tensor) -> torch.Tensor:
        """Frame indices of the padded clip [t] → working-size frames [t, h, w, 3] (mirror padding in time)."""
        picked = self.source_video[geometry.mirror_index(self.source.frames, index)][..., :3].float()
        return geometry.resize_frames(picked, self.height, self.width)

    @property
    def video(self) -> torch.Tensor:
        """The whole padded working-size clip [Np, h, w, 3] (small clips and tests; the VAE streams)."""
        return self.working_frames(torch.arange(self.source.padded_frames))


def broadcast_mask(mask: torch.Tensor, frames: int) -> torch.Tensor:
    """MASK [1 or N, H, W] → [N, H, W] (one frame serves every frame)."""
    return mask.expand(frames, *mask.shape[1:]) if mask.shape[0] == 1 else mask


def working_mask(mask: torch.Tensor, frames: int, height: int, width: int, threshold: float) -> torch.Tensor:
    """Float MASK at source size → bool [N, height, width]: area-resized, then thresholded (Casper)."""
    mask = broadcast_mask(mask, frames)
    out = torch.empty((frames, height, width), dtype=torch.bool)
    for start in range(0, frames, tm.CHUNK_FRAMES):  # a few frames at a time: no full-length float copy
        part = mask[start:start + tm.CHUNK_FRAMES].float()
        if part.shape[1:] != (height, width):
            part = F.interpolate(part.unsqueeze(1), size=(height, width), mode="area").squeeze(1)
        out[start:start + tm.CHUNK_FRAMES] = tm.binarize(part, threshold)
    return out


def latent_trimask(trimask: torch.Tensor) -> torch.Tensor:
    """Pixel trimask [4n+1, h, w] → packed and area-pooled to the latent grid [1, 4, n+1, h/8, w/8]."""
    pooled = F.avg_pool2d(trimask.unsqueeze(1), VAE_STRIDE).squeeze(1)  # [4n+1, h/8, w/8]: pooling first
    return tm.pack_trimask(pooled)  # never holds a packed copy at full size


def casper_inputs(video: torch.Tensor, object_masks: list[torch.Tensor], keep_mask: torch.Tensor | None,
                  height: int, width: int, dilation_px: int, threshold: float) -> CasperInputs:
    """video [N, H, W, 3] + masks [1|N, H, W] each → working-size, padded inputs for the VAE and Wan.

    One object gives one [background, alpha] pair; K ≥ 2 objects give K pairs (object i removed,
    the others kept) and a last pair removing them all (``trimask.object_trimasks``).
    """
    n, src_h, src_w = video.shape[:3]
    padded = geometry.padded_length(n)
    objects = [working_mask(m, n, height, width, threshold) for m in object_masks]
    keep = working_mask(keep_mask, n, height, width, threshold) if keep_mask is not None else None
    trimasks = tm.object_trimasks(objects, keep, dilation_px)  # [P, N, h, w]
    del objects, keep
    if padded != n:
        trimasks = torch.stack([geometry.mirror_pad_time(t, padded) for t in trimasks])
    concat_mask = torch.cat([latent_trimask(t) for t in trimasks]).repeat_interleave(2, dim=0)
    return CasperInputs(video, height, width, trimasks, concat_mask, SourceInfo(n, src_h, src_w, padded))


def layers_to_source(frames: torch.Tensor, source: SourceInfo | None) -> torch.Tensor:
    """Decoded [Np, h, w, C] → the source's frame count and size (padding cropped, size restored)."""
    if source is None:
        return frames
    return geometry.crop_and_restore(frames, source.frames, source.height, source.width)
