"""Cut short clips with PyAV (tests, demos): the first frames of a video, re-encoded losslessly enough."""

from __future__ import annotations

from pathlib import Path

import av


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
