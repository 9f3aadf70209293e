"""The shared real clips, and short cuts of them with PyAV (tests, demos, benchmarks)."""

from __future__ import annotations

import os
from pathlib import Path

import av

from omnimatte_host.comfy_host import PACK_DIR


def shared_clips() -> Path:
    """$OMNIMATTE_SHARED_DATA/clips, else ../shared/data/clips beside the checkout, else /work/shared/data/clips."""
    candidates = [os.environ.get("OMNIMATTE_SHARED_DATA"), PACK_DIR.parent / "shared" / "data", "/work/shared/data"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "clips").is_dir():
            return Path(candidate) / "clips"
    raise FileNotFoundError(f"no shared clips in {candidates}; set OMNIMATTE_SHARED_DATA to the data folder")


def cut_clip(source: Path, target: Path, frames: int, codec: str = "libx264") -> Path:
    """Write the first ``frames`` frames of ``source`` to ``target`` at the same size and rate."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream(codec, rate=stream_in.average_rate or 16)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        stream.options = {"crf": "12"} if codec == "libx264" else {}
        written = 0
        for frame in src.decode(stream_in):
            if written == frames:
                break
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                dst.mux(packet)
            written += 1
        for packet in stream.encode():
            dst.mux(packet)
    if written < frames:
        raise ValueError(f"{source} has only {written} frames, fewer than {frames}")
    return target
