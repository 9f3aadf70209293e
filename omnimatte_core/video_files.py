"""Video files read in chunks with PyAV, so memory follows the chunk, not source size × length.

Frames come out as float32 RGB in 0..1 ([n, H, W, 3]); 8-bit sources decode as rgb24 and
deeper ones as rgb48le. Frames are counted against what the container declares, because a
truncated "faststart" MP4 decodes its first frames and then stops without an error.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

import av
import numpy as np
import torch

log = logging.getLogger(__name__)


class VideoFileError(ValueError):
    """A video file that cannot be read, or reads as fewer frames than it declares."""


@dataclass(frozen=True)
class VideoProbe:
    """What a container says about its first video stream (no frame decoded)."""

    width: int
    height: int
    declared_frames: int  # 0 when the container does not say
    fps: Fraction
    bit_depth: int
    codec: str


def _rewind(source):
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return source


def _open(source) -> av.container.InputContainer:
    try:
        return av.open(_rewind(source), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoFileError(f"is not a readable video ({_reason(err)})") from err


def _reason(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.split(":")[-1].strip() or type(err).__name__


def _video_stream(container) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise VideoFileError("holds no video stream")
    return container.streams.video[0]


def _bit_depth(stream) -> int:
    try:
        return max(c.bits for c in stream.format.components) if stream.format else 8
    except (AttributeError, ValueError):
        return 8


def probe(source) -> VideoProbe:
    """Size, declared frame count, rate and depth of the first video stream."""
    with _open(source) as container:
        stream = _video_stream(container)
        rate = Fraction(stream.average_rate) if stream.average_rate else Fraction(0)
        declared = int(stream.frames or 0)
        if not declared and stream.duration and stream.time_base and rate:
            declared = round(float(stream.duration * stream.time_base * rate))
        if not stream.codec_context.width:
            raise VideoFileError("has a video stream of size 0×0 (damaged header)")
        return VideoProbe(stream.codec_context.width, stream.codec_context.height, declared, rate,
                          _bit_depth(stream), stream.codec_context.name)


@dataclass
class FrameSample:
    """Every decoded frame counted, a few kept small: enough to judge a file without holding it."""

    decoded: int
    frames: torch.Tensor  # [k, h, w, 3] float32 0..1, k ≤ the count asked for


def sample_frames(source, count: int = 16, long_side: int = 96) -> FrameSample:
    """Decode the whole stream (counting frames) and keep ``count`` evenly spread frames, downscaled."""
    declared = probe(source).declared_frames
    step = max(1, declared // count) if declared else 1
    kept: list[np.ndarray] = []
    decoded = 0
    with _open(source) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                if decoded % step == 0 and len(kept) < count:
                    scale = long_side / max(frame.width, frame.height)
                    size = (max(2, round(frame.width * scale)), max(2, round(frame.height * scale)))
                    kept.append(frame.reformat(width=size[0], height=size[1], format="rgb24").to_ndarray())
                decoded += 1
        except av.error.FFmpegError as err:
            if not decoded:
                raise VideoFileError(f"holds no decodable frame ({_reason(err)})") from err
            _stopped(decoded, err, None)
    if not kept:
        raise VideoFileError("decodes to no frames")
    return FrameSample(decoded, as_float(kept))


def _to_array(frame, deep: bool) -> np.ndarray:
    """One decoded frame → [H, W, 3] uint8 or uint16, upright."""
    array = frame.to_ndarray(format="rgb48le" if deep else "rgb24")
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation:
        array = np.ascontiguousarray(np.rot90(array, k=int(round(rotation / 90)), axes=(0, 1)))
    return array


def _stopped(decoded: int, err: Exception, stops: list[str] | None) -> None:
    """A decode error after some frames: the file is damaged there. Warn (and tell the caller through
    ``stops``): the frames after it are lost, whatever the header declares."""
    message = (f"stops decoding after {decoded} frames ({_reason(err)}): the file is damaged or cut off there, "
               "and the frames after it are lost")
    log.warning("the video %s", message)
    if stops is not None:
        stops.append(message)


def iter_frames(source, start_time: float = 0.0, duration: float = 0.0,
                stops: list[str] | None = None) -> Iterator[np.ndarray]:
    """Decoded frames [H, W, 3] (uint8, or uint16 for >8-bit sources) inside an optional trim window.

    A decode error part-way is warned about and appended to ``stops`` when given (the frames so far stay)."""
    with _open(source) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        deep = _bit_depth(stream) > 8
        base = stream.time_base or Fraction(1, 1000)
        start_pts, end_pts = int(start_time / base), int((start_time + duration) / base)
        if start_pts:
            container.seek(start_pts, stream=stream)
        decoded = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is not None and frame.pts < start_pts:
                    continue
                if duration and frame.pts is not None and frame.pts >= end_pts:
                    return
                decoded += 1
                yield _to_array(frame, deep)
        except av.error.FFmpegError as err:
            if not decoded:
                raise VideoFileError(f"holds no decodable frame ({_reason(err)})") from err
            _stopped(decoded, err, stops)


def iter_rgba(source) -> Iterator[np.ndarray]:
    """Decoded frames [H, W, 4] uint16 with their alpha, from a layer file (ProRes 4444, WebM VP9, PNG).

    VP9 goes through the libvpx decoder: FFmpeg's native one ignores the alpha that WebM stores
    beside each frame, and would give alpha 1 everywhere.
    """
    with _open(source) as container:
        stream = _video_stream(container)
        if stream.codec_context.name != "vp9":
            for frame in container.decode(stream):
                yield frame.to_ndarray(format="rgba64le")
            return
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        for packet in container.demux(stream):
            for frame in decoder.decode(packet if packet.size else None):
                yield frame.to_ndarray(format="rgba64le")


def as_float(frames: list[np.ndarray]) -> torch.Tensor:
    """uint8/uint16 frames → [n, H, W, 3] float32 in 0..1."""
    stacked = torch.from_numpy(np.stack(frames).astype(np.float32))
    return stacked / (65535.0 if frames[0].dtype == np.uint16 else 255.0)


def iter_chunks(source, chunk: int, start_time: float = 0.0, duration: float = 0.0,
                stops: list[str] | None = None) -> Iterator[torch.Tensor]:
    """Frames in chunks of ``chunk`` as float32 [n ≤ chunk, H, W, 3] (``stops`` as in :func:`iter_frames`)."""
    pending: list[np.ndarray] = []
    for frame in iter_frames(source, start_time, duration, stops):
        pending.append(frame)
        if len(pending) == chunk:
            yield as_float(pending)
            pending = []
    if pending:
        yield as_float(pending)


def read_resized(source, height: int, width: int, resize: Callable[[torch.Tensor, int, int], torch.Tensor],
                 chunk: int = 8, start_time: float = 0.0, duration: float = 0.0,
                 on_chunk: Callable[[int], None] | None = None, stops: list[str] | None = None) -> torch.Tensor:
    """Every frame at height×width, [N, height, width, 3]; only ``chunk`` source frames held at once."""
    parts, done = [], 0
    for frames in iter_chunks(source, chunk, start_time, duration, stops):
        parts.append(resize(frames, height, width).clamp(0.0, 1.0))
        done += frames.shape[0]
        if on_chunk is not None:
            on_chunk(done)
    if not parts:
        raise VideoFileError("decodes to no frames")
    return torch.cat(parts)


def frames_in_window(header: VideoProbe, start_time: float, duration: float) -> int:
    """Frames the header declares inside a trim window (0 when it declares none): frame k is at k / fps."""
    if not header.declared_frames or not header.fps:
        return 0
    first = min(header.declared_frames, math.ceil(start_time * header.fps - 1e-6))
    if not duration:
        return header.declared_frames - first
    return min(header.declared_frames, math.ceil((start_time + duration) * header.fps - 1e-6)) - first


def check_frame_count(decoded: int, declared: int, allow_fewer: bool,
                      allow_how: str = "allow truncated files") -> str | None:
    """An error (or, when allowed, a warning) text when fewer frames decode than the file declares.

    ``allow_how`` names the caller's switch for using what decodes (a node input, a runner flag).
    """
    if not declared or decoded >= declared:
        return None
    return (f"decoded {decoded} of the {declared} frames the file declares: the file is cut off or damaged. "
            + ("Continuing with the frames that decoded." if allow_fewer else
               f"Re-export or re-download it, or {allow_how} to use the frames that decode."))
