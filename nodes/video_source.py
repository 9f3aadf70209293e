"""A core VIDEO (LoadVideo, Trim Video, CreateVideo) as something the pack can stream in chunks."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import torch

from omnimatte_core import video_files


@dataclass
class VideoSource:
    """A file (path or bytes) with its trim window, or frames already in memory."""

    file: object | None  # str | io.BytesIO
    start_time: float = 0.0
    duration: float = 0.0
    frames: torch.Tensor | None = None  # [N, H, W, 3] when the VIDEO holds components, not a file
    frame_rate: Fraction | None = None  # known for components; read from the file otherwise

    def probe(self) -> video_files.VideoProbe:
        """The file's header (raises VideoFileError for a file that is not a readable video)."""
        if self.frames is not None:
            n, h, w = self.frames.shape[:3]
            return video_files.VideoProbe(w, h, n, self.frame_rate or Fraction(16), 8, "frames")
        return video_files.probe(self.file)

    @property
    def trimmed(self) -> bool:
        return bool(self.start_time or self.duration)

    def chunks(self, chunk: int) -> Iterator[torch.Tensor]:
        """Frames [n ≤ chunk, H, W, 3] float32 in order."""
        if self.frames is not None:
            for i in range(0, self.frames.shape[0], chunk):
                yield self.frames[i:i + chunk, ..., :3].float()
            return
        yield from video_files.iter_chunks(self.file, chunk, self.start_time, self.duration)


def from_video(video) -> VideoSource:
    """Core VIDEO → VideoSource without decoding anything (a file stays a file)."""
    if hasattr(video, "get_stream_source"):
        start, duration = video.get_active_trim_window() if hasattr(video, "get_active_trim_window") else (0, 0)
        return VideoSource(video.get_stream_source(), float(start), float(duration))
    components = video.get_components()
    return VideoSource(None, frames=components.images, frame_rate=Fraction(components.frame_rate))
