"""SaveOmnimatteLayers: every layer written at the source size, streaming the original video."""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.latest import io

from omnimatte_core import layer_writer, video_files
from .checks import CATEGORY, check_finite
from .video_source import from_video

NODE = "SaveOmnimatteLayers"
CHUNK = 8
log = logging.getLogger(__name__)


class SaveOmnimatteLayers(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE,
            display_name="Save Omnimatte Layers",
            category=CATEGORY,
            description="Writes the layers at the SOURCE size and frame rate: it re-reads the original video a few "
                        "frames at a time, brings the background and alpha up to its size, recovers the "
                        "foreground and writes each layer to output/<folder>/<layer>/. A folder that already "
                        "holds files gets -2, -3 … so runs never mix.",
            inputs=[
                io.Video.Input("source_video", tooltip="The ORIGINAL video (Load Video), the same one the frames "
                                                       "came from."),
                io.Image.Input("background", tooltip="Clean background from OmnimatteDecode (any size)."),
                io.Mask.Input("alpha", tooltip="Alpha matte from OmnimatteDecode (1 = object and its effects)."),
                io.String.Input("folder", default="omnimatte/layers",
                                tooltip="Sub-folder of ComfyUI's output folder; each layer gets its own folder "
                                        "inside it."),
                io.Boolean.Input("save_rgba", default=True,
                                 tooltip="rgba/: the layer to composite, straight (unpremultiplied) alpha, in "
                                         "rgba_format."),
                io.Combo.Input("rgba_format", options=list(layer_writer.RGBA_FORMATS), default="png8",
                               tooltip="png8: 8-bit RGBA PNGs (lossless, smallest). png16: 16-bit RGBA PNGs "
                                       "(lossless; alpha/ also 16-bit). prores4444: rgba.mov, ProRes 4444 10-bit "
                                       "with alpha, for editing and compositing tools. webm_vp9: rgba.webm, VP9 "
                                       "with 8-bit alpha, lossy: for web players and reviews."),
                io.Boolean.Input("save_alpha", default=True, tooltip="alpha/: greyscale PNG sequence (lossless)."),
                io.Boolean.Input("save_background", default=True,
                                 tooltip="background/background.mp4: the clean plate, H.264 crf 12 (visually "
                                         "lossless)."),
                io.Boolean.Input("save_foreground", default=False,
                                 tooltip="foreground/foreground.mp4: straight foreground colours as a preview."),
                io.Float.Input("epsilon", default=1e-3, min=1e-6, max=0.1, step=1e-4,
                               tooltip="Added to α before dividing when recovering the foreground."),
                io.Video.Input("new_background", optional=True,
                               tooltip="When connected: composite/composite.mp4, the foreground with its shadows "
                                       "over this video (resized to cover, centre-cropped)."),
                io.Combo.Input("short_background", options=["loop", "hold_last"], default="loop",
                               tooltip="A new background shorter than the clip loops, or holds its last frame."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, source_video, background, alpha, folder: str, save_rgba: bool, rgba_format: str,
                save_alpha: bool, save_background: bool, save_foreground: bool, epsilon: float,
                short_background: str, new_background=None) -> io.NodeOutput:
        for name, t in (("background", background), ("alpha", alpha)):
            check_finite(NODE, name, t)
        chosen = {"rgba": save_rgba, "alpha": save_alpha, "background": save_background,
                  "foreground": save_foreground, "composite": new_background is not None}
        names = tuple(name for name in layer_writer.LAYER_NAMES if chosen[name])
        if not names:
            raise ValueError(f"{NODE}: every layer is switched off. Turn on at least one save_ option.")
        source = from_video(source_video)
        header = _probe(source, "source_video")
        target = layer_writer.unique_folder(_output_folder(folder))
        request = layer_writer.WriteRequest(target, names, header.fps, epsilon, rgba_format=rgba_format)
        backdrop = None
        if new_background is not None:
            extra = from_video(new_background)
            _probe(extra, "new_background")
            backdrop = layer_writer.frames_forever(lambda: extra.chunks(CHUNK), loop=short_background == "loop")
        progress = comfy.utils.ProgressBar(background.shape[0])

        def on_chunk(done: int) -> None:
            comfy.model_management.throw_exception_if_processing_interrupted()
            progress.update_absolute(done, background.shape[0])

        try:
            files = layer_writer.write_layers(source.chunks(CHUNK), background, alpha, request, backdrop, on_chunk)
        except (layer_writer.LayerWriteError, video_files.VideoFileError) as err:
            raise ValueError(f"{NODE}: {err} Nothing was kept from this run.") from err
        log.info("%s: wrote %s to %s", NODE, ", ".join(files), target)
        return io.NodeOutput(ui=_ui(files))


def _probe(source, name: str):
    try:
        return source.probe()
    except video_files.VideoFileError as err:
        raise ValueError(f"{NODE}: '{name}' {err}. Connect the Load Video that holds the original clip.") from err


def _output_folder(folder: str) -> Path:
    root = Path(folder_paths.get_output_directory()).resolve()
    target = (root / folder.strip().strip("/")).resolve()
    if not folder.strip() or not target.is_relative_to(root) or target == root:
        raise ValueError(f"{NODE}: folder '{folder}' must name a sub-folder inside ComfyUI's output folder, "
                         "e.g. omnimatte/my_clip.")
    return target


def _ui(files: dict[str, list[Path]]) -> dict:
    """SaveImage-style results: the RGBA frames as previews, every file under ``omnimatte_layers``."""
    root = Path(folder_paths.get_output_directory()).resolve()

    def result(path: Path) -> dict:
        rel = path.resolve().relative_to(root)
        return {"filename": rel.name, "subfolder": str(rel.parent), "type": "output"}

    listed = [{**result(p), "layer": name} for name, paths in files.items() for p in paths]
    pngs = [p for p in files.get("rgba", []) if p.suffix == ".png"] or files.get("alpha", [])
    previews = [result(p) for p in pngs]
    return {"images": previews, "omnimatte_layers": listed}
