"""The shared real clips (../shared/data/clips) and short cuts of them for end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from omnimatte_eval.clips import cut_clip, shared_clips

__all__ = ["shared_clips", "short_clips", "faststart_copy", "truncated_copy", "text_as_video", "mapped_clip"]


def short_clips(folder: Path, frames: int = 9) -> dict[str, Path]:
    """animator-draw's first ``frames`` frames (video + mask) and a shorter new background from boys-beach."""
    clips = shared_clips()
    return {
        "video": cut_clip(clips / "animator-draw" / "input_video.mp4", folder / "animator_draw.mp4", frames),
        "mask": cut_clip(clips / "animator-draw" / "mask_00.mp4", folder / "animator_draw_mask.mp4", frames),
        "new_background": cut_clip(clips / "boys-beach" / "input_video.mp4", folder / "beach.mp4", frames // 2),
    }


def faststart_copy(source: Path, target: Path) -> Path:
    """``source`` remuxed (no re-encode) with the index at the front, as web downloads often are."""
    with av.open(str(source)) as src, av.open(str(target), "w", options={"movflags": "faststart"}) as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream_from_template(stream_in)
        for packet in src.demux(stream_in):
            if packet.dts is None:
                continue
            packet.stream = stream
            dst.mux(packet)
    return target


def truncated_copy(source: Path, target: Path, keep: float) -> Path:
    """The first ``keep`` share of ``source``'s bytes: a download that stopped part way."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def text_as_video(target: Path) -> Path:
    target.write_text("this is a text file with a video's name\n" * 20)
    return target


def mapped_clip(source: Path, target: Path, change) -> Path:
    """``source`` re-encoded with every frame [H, W, 3] uint8 passed through ``change`` (e.g. invert a mask)."""
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=stream_in.average_rate or 16)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        stream.options = {"crf": "12"}
        for frame in src.decode(stream_in):
            array = np.ascontiguousarray(change(frame.to_ndarray(format="rgb24")))
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return target
