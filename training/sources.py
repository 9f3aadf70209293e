"""Where foregrounds and backgrounds come from: folders on disk, or procedural generators.

Foregrounds: a VideoMatte240K-layout folder (``fgr/NAME`` RGB clip + ``pha/NAME`` alpha clip,
each a video file or a folder of frames, matched by name) or :class:`ProceduralForegrounds`.
Backgrounds: a folder of videos (optional caption ``NAME.txt`` beside ``NAME.mp4``) or
:class:`ProceduralBackgrounds`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from omnimatte_core.frame_geometry import mirror_pad_time

from . import procedural
from .video_io import clip_length, cover_resize, is_clip, read_clip

DEFAULT_CAPTION = "a video of a textured background."


@dataclass
class Foreground:
    rgb: torch.Tensor  # [N, H, W, 3]
    alpha: torch.Tensor  # [N, H, W]
    name: str


@dataclass
class Background:
    rgb: torch.Tensor  # [N, H, W, 3]
    caption: str
    name: str


class ForegroundSource(Protocol):
    def sample(self, rng: np.random.Generator, frames: int, height: int, width: int) -> Foreground: ...


class BackgroundSource(Protocol):
    def sample(self, rng: np.random.Generator, frames: int, height: int, width: int) -> Background: ...

    def captions(self) -> list[str]: ...


class ProceduralForegrounds:
    def sample(self, rng, frames, height, width) -> Foreground:
        rgb, alpha = procedural.procedural_foreground(rng, frames, height, width)
        return Foreground(rgb, alpha, "procedural")


class ProceduralBackgrounds:
    def __init__(self, caption: str = DEFAULT_CAPTION):
        self.caption = caption

    def sample(self, rng, frames, height, width) -> Background:
        return Background(procedural.procedural_background(rng, frames, height, width), self.caption, "procedural")

    def captions(self) -> list[str]:
        return [self.caption]


def _window(rng: np.random.Generator, path: Path, frames: int) -> tuple[int, int]:
    total = clip_length(path)
    if total < 1:
        raise ValueError(f"{path} has no frames; remove it from the data folder")
    start = int(rng.integers(0, max(1, total - frames + 1)))
    return start, min(frames, total - start)


def _fit(clip: torch.Tensor, frames: int, height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
    """Resize to cover (random crop) and mirror-pad in time to ``frames`` (never drops frames)."""
    offset = (float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
    clip = cover_resize(clip, height, width, offset)
    return mirror_pad_time(clip, frames) if clip.shape[0] < frames else clip


class VideoMatteFolder:
    """VideoMatte240K layout: ``root/fgr/NAME`` and ``root/pha/NAME`` (video files or frame folders)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        fgr, pha = self.root / "fgr", self.root / "pha"
        if not fgr.is_dir() or not pha.is_dir():
            raise ValueError(f"{self.root} is not a VideoMatte240K-style folder (needs fgr/ and pha/). Point "
                             "--foregrounds at the folder holding fgr/ and pha/, e.g. VideoMatte240K_JPEG_SD/train")
        self.pairs = [(f, pha / f.name) for f in sorted(fgr.iterdir()) if is_clip(f) and (pha / f.name).exists()]
        if not self.pairs:
            raise ValueError(f"{self.root}: no clip in fgr/ has a same-named alpha in pha/. Check the download "
                             "is complete (fgr/0000.mp4 pairs with pha/0000.mp4)")

    def sample(self, rng, frames, height, width) -> Foreground:
        fgr_path, pha_path = self.pairs[int(rng.integers(0, len(self.pairs)))]
        start, count = _window(rng, fgr_path, frames)
        rgb = read_clip(fgr_path, start, count)
        alpha = read_clip(pha_path, start, count, gray=True)
        n = min(rgb.shape[0], alpha.shape[0])
        stacked = torch.cat((rgb[:n], alpha[:n]), dim=-1)  # one crop for both
        stacked = _fit(stacked, frames, height, width, rng)
        return Foreground(stacked[..., :3].contiguous(), stacked[..., 3].contiguous(), fgr_path.name)


class VideoFolderBackgrounds:
    """Every video (or frame folder) in ``root``; the caption is ``NAME.txt`` beside it, if present."""

    def __init__(self, root: str | Path, default_caption: str = DEFAULT_CAPTION):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"background folder {self.root} does not exist; pass --backgrounds DIR or "
                             "--backgrounds procedural")
        self.clips = [p for p in sorted(self.root.iterdir()) if is_clip(p)]
        if not self.clips:
            raise ValueError(f"{self.root} holds no videos (.mp4/.mov/.mkv/.webm) or frame folders")
        self.default_caption = default_caption

    def caption_for(self, path: Path) -> str:
        txt = path.with_suffix(".txt") if path.is_file() else path.parent / f"{path.name}.txt"
        return txt.read_text().strip() if txt.is_file() else self.default_caption

    def captions(self) -> list[str]:
        return sorted({self.caption_for(p) for p in self.clips})

    def sample(self, rng, frames, height, width) -> Background:
        path = self.clips[int(rng.integers(0, len(self.clips)))]
        start, count = _window(rng, path, frames)
        rgb = _fit(read_clip(path, start, count), frames, height, width, rng)
        return Background(rgb, self.caption_for(path), path.name)


def foreground_source(spec: str) -> ForegroundSource:
    return ProceduralForegrounds() if spec == "procedural" else VideoMatteFolder(spec)


def background_source(spec: str) -> BackgroundSource:
    return ProceduralBackgrounds() if spec == "procedural" else VideoFolderBackgrounds(spec)
