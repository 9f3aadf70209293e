"""Write the layers at the source size while streaming the original frames, a chunk at a time.

The layers arrive at the working size (background [N, h, w, 3], alpha [N, h, w]); each chunk of
source frames [n, H, W, 3] gets its slice of the layers resized to H×W, the foreground recovered
(``layers.recover_foreground``) and every layer written before the next chunk is read, so peak
memory is a chunk at source size plus the working-size layers.

Formats (chosen for speed and fidelity; docs/performance.md has the timings):
  rgba/        ``rgba_format``: png8 — PNG sequence, 8-bit RGBA, zlib level 1, lossless;
               png16 — PNG sequence, 16-bit RGBA, lossless; prores4444 — rgba.mov, ProRes 4444
               (prores_ks, yuva444p10le), 10-bit with alpha; webm_vp9 — rgba.webm, VP9 (libvpx,
               yuva420p, crf 12) with an 8-bit alpha plane, lossy, for web players and previews.
               Alpha is always straight (unpremultiplied).
  alpha/       PNG sequence, greyscale, 8-bit (16-bit with png16) — lossless
  background/  H.264 MP4 (libx264 crf 12, preset veryfast, yuv420p; yuv444p for odd sizes) — visually lossless
  foreground/  H.264 MP4 as background (a preview; compositing uses rgba/)
  composite/   H.264 MP4 as background, the foreground over a new background
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator
import zlib

import av
import numpy as np
import torch

from . import layers, quantise
from .frame_geometry import resize_frames

log = logging.getLogger(__name__)
LAYER_NAMES = ("rgba", "alpha", "background", "foreground", "composite")
RGBA_FORMATS = ("png8", "png16", "prores4444", "webm_vp9")
DEEP_FORMATS = ("png16", "prores4444")  # written from uint16 values
VP9_OPTIONS = {"crf": "12", "b:v": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
PNG_COMPRESSION = 1  # zlib level: 1.3× faster than SaveImage's 4 at 1080p, files 15 % larger (docs/performance.md)
H264_OPTIONS = {"crf": "12", "preset": "veryfast"}
ALPHA_NOTE = "straight (unpremultiplied)"  # written into every RGBA file: PNG text chunk "Alpha", video "comment"


class LayerWriteError(ValueError):
    """The layers and the source video do not fit together."""


@dataclass
class WriteRequest:
    """What to write, where, at which rate."""

    folder: Path
    layers: tuple[str, ...]
    fps: Fraction
    epsilon: float = 1e-3
    alpha_gain: float = 1.0
    rgba_format: str = "png8"  # one of RGBA_FORMATS

    def __post_init__(self):
        if self.rgba_format not in RGBA_FORMATS:
            raise LayerWriteError(f"rgba_format '{self.rgba_format}' is not one of {', '.join(RGBA_FORMATS)}.")

    @property
    def deep(self) -> bool:
        """16-bit (png16) or 10-bit (prores4444) output: the maths' values go out as uint16."""
        return self.rgba_format in DEEP_FORMATS


def unique_folder(folder: Path) -> Path:
    """``folder``, or ``folder-2``, ``-3`` … when an earlier run left files there (runs never mix)."""
    return unique_folders(folder, [])[0]


def unique_folders(folder: Path, suffixes: list[str]) -> list[Path]:
    """``folder`` and ``folder-<suffix>`` for each suffix, all with the same ``-2``, ``-3`` … so that
    none of them holds an earlier run's files (a several-object run writes them together)."""
    def family(base: Path) -> list[Path]:
        return [base] + [base.with_name(f"{base.name}-{suffix}") for suffix in suffixes]

    candidate, n = folder, 2
    while any(p.exists() and any(p.iterdir()) for p in family(candidate)):
        candidate, n = folder.with_name(f"{folder.name}-{n}"), n + 1
    return family(candidate)


def remove_files(files: dict[str, list[Path]]) -> None:
    """Undo a pass of :func:`write_layers` that failed (a node's run also discards its staging folders)."""
    for paths in files.values():
        for path in paths:
            path.unlink(missing_ok=True)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Float 0..1 → uint8 array (``quantise.to_uint8``) for the encoders."""
    return quantise.to_uint8(frames).numpy()


def to_uint16(frames: torch.Tensor) -> np.ndarray:
    """Float 0..1 → uint16 array for 16-bit PNGs."""
    return quantise.to_uint16(frames).numpy().astype(np.uint16)


def with_alpha_note(png: bytes) -> bytes:
    """A PNG file with a tEXt chunk ``Alpha: straight (unpremultiplied)`` after its header chunk."""
    data = b"Alpha\0" + ALPHA_NOTE.encode("latin-1")
    chunk = len(data).to_bytes(4, "big") + b"tEXt" + data + zlib.crc32(b"tEXt" + data).to_bytes(4, "big")
    end_of_header = 8 + 25  # signature + IHDR (length, type, 13 bytes, crc)
    return png[:end_of_header] + chunk + png[end_of_header:]


class Png16Sequence:
    """``<folder>/<name>_00001.png`` … at 16 bits per channel (PIL writes 8-bit RGBA only; PyAV's PNG encoder)."""

    FORMATS = {1: ("gray16le", "gray16be"), 4: ("rgba64le", "rgba64be")}

    def __init__(self, folder: Path, name: str):
        self.folder, self.name = folder, name
        self.files: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, frames: np.ndarray) -> None:
        """frames [n, H, W] (grey) or [n, H, W, 4] uint16."""
        channels = 1 if frames.ndim == 3 else frames.shape[-1]
        source, target = self.FORMATS[channels]
        for frame in frames:
            encoder = av.CodecContext.create("png", "w")
            encoder.width, encoder.height, encoder.pix_fmt = frame.shape[1], frame.shape[0], target
            encoder.time_base = Fraction(1, 25)
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=source).reformat(format=target)
            path = self.folder / f"{self.name}_{len(self.files) + 1:05d}.png"
            data = b"".join(bytes(p) for p in (*encoder.encode(image), *encoder.encode(None)))
            path.write_bytes(with_alpha_note(data) if channels == 4 else data)
            self.files.append(path)

    def close(self) -> None:
        pass


class PngSequence:
    """``<folder>/<name>_00001.png`` …, saved on a small thread pool (zlib releases the GIL)."""

    def __init__(self, folder: Path, name: str, pool: ThreadPoolExecutor):
        self.folder, self.name, self.pool = folder, name, pool
        self.files: list[Path] = []
        self.pending = []
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, frames: np.ndarray) -> None:
        """frames [n, H, W] (grey) or [n, H, W, 3|4] uint8."""
        from PIL import Image, PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_text("Alpha", ALPHA_NOTE)
        for frame in frames:
            path = self.folder / f"{self.name}_{len(self.files) + 1:05d}.png"
            self.files.append(path)
            image = Image.fromarray(frame)
            extra = {"pnginfo": info} if frame.ndim == 3 and frame.shape[-1] == 4 else {}
            self.pending.append(self.pool.submit(image.save, path, compress_level=PNG_COMPRESSION, **extra))
        self.wait(keep=4)

    def wait(self, keep: int = 0) -> None:
        while len(self.pending) > keep:
            self.pending.pop(0).result()

    def close(self) -> None:
        self.wait()


class EncodedVideo:
    """``<folder>/<name>.<suffix>``: one video stream at the source rate; frames arrive as numpy arrays."""

    def __init__(self, folder: Path, name: str, suffix: str, codec: str, size: tuple[int, int], fps: Fraction,
                 pix_fmt: str, options: dict[str, str], input_format: str):
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.{suffix}"
        self.files = [path]
        self.input_format, self.pix_fmt = input_format, pix_fmt
        self.container = av.open(str(path), mode="w")
        if pix_fmt.startswith("yuva"):  # a layer with alpha says which alpha
            self.container.metadata["comment"] = f"alpha: {ALPHA_NOTE}"
        self.stream = self.container.add_stream(codec, rate=fps if fps > 0 else Fraction(16))
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt, self.stream.options = pix_fmt, dict(options)

    def write(self, frames: np.ndarray) -> None:
        """frames [n, H, W, C] in ``input_format`` (rgb24 uint8 or rgba64le uint16)."""
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=self.input_format)
            for packet in self.stream.encode(image.reformat(format=self.pix_fmt)):
                self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def h264_video(folder: Path, name: str, width: int, height: int, fps: Fraction) -> EncodedVideo:
    """H.264 MP4 (yuv420p; yuv444p for odd sizes, which 4:2:0 cannot hold)."""
    pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return EncodedVideo(folder, name, "mp4", "libx264", (width, height), fps, pix_fmt, H264_OPTIONS, "rgb24")


def prores4444_video(folder: Path, name: str, width: int, height: int, fps: Fraction) -> EncodedVideo:
    """ProRes 4444 .mov (prores_ks): 10-bit 4:4:4 with a 10-bit alpha channel, from straight RGBA."""
    return EncodedVideo(folder, name, "mov", "prores_ks", (width, height), fps, "yuva444p10le",
                        {"profile": "4444"}, "rgba64le")


def vp9_alpha_video(folder: Path, name: str, width: int, height: int, fps: Fraction) -> EncodedVideo:
    """WebM VP9 (libvpx) with alpha: yuva420p, 8-bit. FFmpeg's native vp9 decoder drops the alpha
    plane; read it back with the libvpx-vp9 decoder (``video_files.iter_rgba``)."""
    return EncodedVideo(folder, name, "webm", "libvpx-vp9", (width, height), fps, "yuva420p", VP9_OPTIONS, "rgba")


def _layer_chunk(background: torch.Tensor, alpha: torch.Tensor, start: int, n: int, height: int, width: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames start..start+n of the working-size layers at height×width: [n, H, W, 3], [n, H, W]."""
    bg = resize_frames(background[start:start + n, ..., :3].float(), height, width).clamp(0.0, 1.0)
    a = resize_frames(alpha[start:start + n].float().unsqueeze(-1), height, width)[..., 0].clamp(0.0, 1.0)
    return bg, a


def write_layers(source_chunks: Iterator[torch.Tensor], background: torch.Tensor, alpha: torch.Tensor,
                 request: WriteRequest, new_background: Iterator[torch.Tensor] | None = None,
                 on_chunk: Callable[[int], None] | None = None) -> dict[str, list[Path]]:
    """Stream source chunks [n, H, W, 3] against the layers; → {layer: files written}.

    ``new_background`` yields one frame [H', W', 3] at a time (any size; fitted to cover) for the
    composite. Raises LayerWriteError when the frame counts differ (files written so far are removed).
    """
    total = background.shape[0]
    if alpha.shape[0] != total:
        raise LayerWriteError(f"'background' has {total} frames but 'alpha' has {alpha.shape[0]}; connect both "
                              "outputs of the same OmnimatteDecode.")
    writers: dict[str, object] = {}
    done = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        try:
            for frames in source_chunks:
                n, height, width = frames.shape[:3]
                if done + n > total:
                    raise LayerWriteError(f"the source video has more frames than the layers ({total}): the "
                                          "layers come from a different or trimmed clip.")
                if not writers:
                    writers = _open_writers(request, height, width, pool)
                bg, a = _layer_chunk(background, alpha, done, n, height, width)
                _write_chunk(writers, frames[..., :3], bg, a, request, new_background)
                done += n
                if on_chunk is not None:
                    on_chunk(done)
            if done != total:
                raise LayerWriteError(f"the source video has {done} frames but the layers have {total}: the "
                                      "layers come from a different clip, or the file is cut off.")
        except BaseException:
            _close_quietly(writers)
            remove_files({name: w.files for name, w in writers.items()})
            raise
        _close_or_raise(writers, request.folder)
    return {name: list(w.files) for name, w in writers.items()}


def _open_writers(request: WriteRequest, height: int, width: int, pool: ThreadPoolExecutor) -> dict[str, object]:
    writers = {}
    for name in request.layers:
        folder = request.folder / name
        if name == "rgba" and request.rgba_format == "prores4444":
            writers[name] = prores4444_video(folder, name, width, height, request.fps)
        elif name == "rgba" and request.rgba_format == "webm_vp9":
            writers[name] = vp9_alpha_video(folder, name, width, height, request.fps)
        elif name in ("rgba", "alpha") and request.deep:
            writers[name] = Png16Sequence(folder, name)
        elif name in ("rgba", "alpha"):
            writers[name] = PngSequence(folder, name, pool)
        else:
            writers[name] = h264_video(folder, name, width, height, request.fps)
    return writers


def _write_chunk(writers: dict, frames: torch.Tensor, bg: torch.Tensor, a: torch.Tensor, request: WriteRequest,
                 new_background: Iterator[torch.Tensor] | None) -> None:
    exact = to_uint16 if request.deep else to_uint8  # what rgba/ and alpha/ store
    if "alpha" in writers:
        writers["alpha"].write(exact(a))
    if "background" in writers:
        writers["background"].write(to_uint8(bg))
    if not {"rgba", "foreground", "composite"} & writers.keys():
        return
    foreground = layers.recover_foreground(frames, bg, a, request.epsilon)
    if "rgba" in writers:
        writers["rgba"].write(np.concatenate((exact(foreground), exact(a)[..., None]), axis=-1))
    if "foreground" in writers:
        writers["foreground"].write(to_uint8(foreground))
    if "composite" in writers:
        n, height, width = frames.shape[:3]
        plate = torch.stack([layers.fit_background(next(new_background)[None], height, width, 1)[0]
                             for _ in range(n)])
        writers["composite"].write(to_uint8(layers.composite(foreground, a, plate, request.alpha_gain)))


def _close_quietly(writers: dict) -> None:
    """Close after a failure: that failure is the one to report, so close errors are only logged."""
    for writer in writers.values():
        try:
            writer.close()
        except Exception as err:
            log.debug("closing %s after a failure: %s", writer, err)


def _close_or_raise(writers: dict, folder: Path) -> None:
    """Close after every frame was written. Closing flushes the encoders and the pending PNGs, so an error
    here (disk full, encoder failure) means a truncated file: remove every file and raise."""
    failed: list[tuple[str, BaseException]] = []
    for name, writer in writers.items():
        try:
            writer.close()
        except Exception as err:
            failed.append((name, err))
    if not failed:
        return
    remove_files({name: w.files for name, w in writers.items()})
    name, err = failed[0]
    where = writers[name].files[-1] if writers[name].files else folder / name
    raise LayerWriteError(f"finishing the '{name}' layer at {where} failed ({type(err).__name__}: {err}); "
                          f"{len(failed)} of {len(writers)} layers could not be finished, so every file in "
                          f"{folder} was removed. Check the free space and write access of {folder} and run "
                          "again.") from err


def frames_forever(chunks: Callable[[], Iterator[torch.Tensor]], loop: bool) -> Iterator[torch.Tensor]:
    """One frame [H, W, 3] at a time from a restartable chunk source; at its end loop or hold the last."""
    last = None
    while True:
        for chunk in chunks():
            for frame in chunk:
                last = frame
                yield frame
        if last is None:
            raise LayerWriteError("the new background video has no frames.")
        if not loop:
            while True:
                yield last
