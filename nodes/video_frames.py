"""OmnimatteVideoFrames: a VIDEO decoded straight to the working size, a few source frames at a time.

Core GetVideoComponents holds every frame at source size in float32 (≈ 25 MB a 1080p frame);
this node keeps only the working-size frames, so memory no longer grows with the source
resolution. The original file stays in the VIDEO for SaveOmnimatteLayers to re-read.
"""

from __future__ import annotations

import logging

import comfy.model_management
import comfy.utils
from comfy_api.latest import io

from omnimatte_core import frame_geometry as geometry
from omnimatte_core import video_files
from .checks import CATEGORY
from .video_source import from_video

NODE = "OmnimatteVideoFrames"
CHUNK = 8
log = logging.getLogger(__name__)


class OmnimatteVideoFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE,
            display_name="Video Frames at Working Size (Omnimatte)",
            category=CATEGORY,
            description="Decodes a VIDEO straight to the working size (stretched, as Omnimatte Conditioning "
                        "resizes), holding only a few source frames at a time. Use it instead of Get Video "
                        "Components for long or large clips; SaveOmnimatteLayers brings the layers back to the "
                        "source size from the same VIDEO.",
            inputs=[
                io.Video.Input("video", tooltip="From Load Video (or Trim Video). Works for the clip and for "
                                                "mask videos alike."),
                io.Int.Input("width", default=832, min=16, max=2048, step=16,
                             tooltip="Working width; use the same value on Omnimatte Conditioning (Casper: 832)."),
                io.Int.Input("height", default=480, min=16, max=2048, step=16,
                             tooltip="Working height; use the same value on Omnimatte Conditioning (Casper: 480)."),
                io.Boolean.Input("allow_truncated", default=False,
                                 tooltip="A file that decodes fewer frames than it declares is cut off or damaged "
                                         "and is refused. Turn on to use the frames that decode."),
            ],
            outputs=[
                io.Image.Output(display_name="frames", tooltip="Every frame at width×height."),
                io.Float.Output(display_name="fps", tooltip="The source's frame rate."),
                io.Int.Output(display_name="frame_count", tooltip="Frames decoded."),
            ],
        )

    @classmethod
    def execute(cls, video, width: int, height: int, allow_truncated: bool) -> io.NodeOutput:
        source = from_video(video)
        try:
            header = source.probe()
        except video_files.VideoFileError as err:
            raise ValueError(f"{NODE}: the video {err}. Load a different file (a text file or a cut-off "
                             "download will not decode).") from err
        declared = video_files.frames_in_window(header, source.start_time, source.duration) \
            if source.file is not None else header.declared_frames
        progress = comfy.utils.ProgressBar(declared or 1)

        def on_chunk(done: int) -> None:
            comfy.model_management.throw_exception_if_processing_interrupted()
            progress.update_absolute(min(done, declared or done), declared or done)

        stops: list[str] = []  # decode errors part-way: damage whatever the header declares
        if source.frames is not None:
            frames = geometry.resize_frames(source.frames[..., :3].float(), height, width).clamp(0.0, 1.0)
        else:
            try:
                frames = video_files.read_resized(source.file, height, width, geometry.resize_frames, CHUNK,
                                                  source.start_time, source.duration, on_chunk, stops)
            except video_files.VideoFileError as err:
                raise ValueError(f"{NODE}: the video {err}. Load a different file.") from err
        if source.trimmed and declared:
            declared -= 1  # a trim window's edges fall between timestamps: one frame either way is not damage
        _check_complete(frames.shape[0], declared, stops, allow_truncated)
        return io.NodeOutput(frames, float(header.fps), frames.shape[0])


def _check_complete(decoded: int, declared: int, stops: list[str], allow_truncated: bool) -> None:
    """Refuse (or, with allow_truncated, warn about) a video that is cut off or damaged: fewer frames than
    declared, or a decode error part-way; say that the length could not be checked when nothing declares it."""
    short = video_files.check_frame_count(decoded, declared, allow_truncated, "turn on allow_truncated")
    if short is None and stops:
        short = (f"{stops[0]}. " + ("Continuing with the frames that decoded." if allow_truncated else
                                    "Re-export or re-download it, or turn on allow_truncated to use the frames "
                                    "that decode."))
    if short and not allow_truncated:
        raise ValueError(f"{NODE}: the video {short}")
    if short:
        log.warning("%s: the video %s", NODE, short)
    elif not declared:
        log.warning("%s: the video does not say how many frames it holds, so the %d that decoded could not be "
                    "checked for a cut-off end; look at the last frames if the file may be incomplete.", NODE, decoded)
