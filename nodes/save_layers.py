"""SaveOmnimatteLayers: every layer written at the source size, streaming the original video."""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.model_management
import comfy.utils
import folder_paths
from comfy_api.latest import io

from omnimatte_core import layer_writer, staging, video_files
from .checks import CATEGORY, check_finite, check_same_video
from .objects import OmnimatteLayers
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
                OmnimatteLayers.Input("layers", optional=True,
                                      tooltip="Several objects: OmnimatteDecode's layers. Each object also gets "
                                              "<folder>-<name>/ with its own rgba, alpha, foreground, and its "
                                              "background (that object removed, the others kept); <folder>/ holds "
                                              "all objects together and the clean plate."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, source_video, background, alpha, folder: str, save_rgba: bool, rgba_format: str,
                save_alpha: bool, save_background: bool, save_foreground: bool, epsilon: float,
                short_background: str, new_background=None, layers=None) -> io.NodeOutput:
        for name, t in (("background", background), ("alpha", alpha)):
            check_finite(NODE, name, t)
        chosen = {"rgba": save_rgba, "alpha": save_alpha, "background": save_background,
                  "foreground": save_foreground, "composite": new_background is not None}
        names = tuple(name for name in layer_writer.LAYER_NAMES if chosen[name])
        if not names:
            raise ValueError(f"{NODE}: every layer is switched off. Turn on at least one save_ option.")
        passes = [(background, alpha, names)]
        layers = layers if layers is not None and len(layers) > 1 else None  # one object: <folder>/ holds it
        if layers is not None:
            check_same_video(NODE, ("background", background[..., :3]), ("layers", layers.plate))
            per_object = tuple(name for name in names if name != "composite")
            passes += [(layers.backgrounds[k], layers.alphas[k], per_object) for k in range(len(layers))]
        source = from_video(source_video)
        header = _probe(source, "source_video")
        targets = layer_writer.unique_folders(_output_folder(folder), list(layers.names) if layers else [])
        _name_leftovers(targets[0].parent)
        backdrop = None
        if new_background is not None:
            extra = from_video(new_background)
            _probe(extra, "new_background")
            backdrop = layer_writer.frames_forever(lambda: extra.chunks(CHUNK), loop=short_background == "loop")
        progress = _Progress(background.shape[0], len(passes))
        written: list[tuple[Path, dict]] = []
        try:
            with staging.staged(targets) as stages:  # the folders appear only when every pass is closed
                for stage, (plate, matte, wanted) in zip(stages, passes):
                    request = layer_writer.WriteRequest(stage, wanted, header.fps, epsilon, rgba_format=rgba_format)
                    written.append((stage, layer_writer.write_layers(source.chunks(CHUNK), plate, matte, request,
                                                                     backdrop, progress.on_chunk)))
                    progress.next_pass()
        except (layer_writer.LayerWriteError, video_files.VideoFileError) as err:
            raise ValueError(f"{NODE}: {err} Nothing was kept from this run.") from err
        except OSError as err:
            raise ValueError(f"{NODE}: writing the layers to {targets[0]} failed ({err}). Check the free space and "
                             "write access there. Nothing was kept from this run.") from err
        written = [(target, staging.moved(files, stage, target)) for target, (stage, files) in zip(targets, written)]
        for target, files in written:
            log.info("%s: wrote %s to %s", NODE, ", ".join(files), target)
        return io.NodeOutput(ui=_ui(written))


class _Progress:
    """One bar over every pass (all objects together, then each object); cancel between chunks."""

    def __init__(self, frames: int, passes: int):
        self.frames, self.total, self.done = frames, frames * passes, 0
        self.bar = comfy.utils.ProgressBar(self.total)

    def on_chunk(self, done_in_pass: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        self.bar.update_absolute(self.done + done_in_pass, self.total)

    def next_pass(self) -> None:
        self.done += self.frames


def _probe(source, name: str):
    try:
        return source.probe()
    except video_files.VideoFileError as err:
        raise ValueError(f"{NODE}: '{name}' {err}. Connect the Load Video that holds the original clip.") from err


def _name_leftovers(parent: Path) -> None:
    for remains in staging.leftovers(parent):
        log.warning("%s: %s is what a run stopped while writing left behind (killed, or the machine went down); "
                    "it is not a layer folder and this run does not use it. Delete it when you no longer need it.",
                    NODE, remains)


def _output_folder(folder: str) -> Path:
    root = Path(folder_paths.get_output_directory()).resolve()
    target = (root / folder.strip().strip("/")).resolve()
    if not folder.strip() or not target.is_relative_to(root) or target == root:
        raise ValueError(f"{NODE}: folder '{folder}' must name a sub-folder inside ComfyUI's output folder, "
                         "e.g. omnimatte/my_clip.")
    return target


def _ui(written: list[tuple[Path, dict[str, list[Path]]]]) -> dict:
    """SaveImage-style results: the first folder's RGBA frames as previews, every file under ``omnimatte_layers``
    (with its layer and, for a several-object run, its folder)."""
    root = Path(folder_paths.get_output_directory()).resolve()

    def result(path: Path) -> dict:
        rel = path.resolve().relative_to(root)
        return {"filename": rel.name, "subfolder": str(rel.parent), "type": "output"}

    listed = [{**result(p), "layer": name, "folder": target.name}
              for target, files in written for name, paths in files.items() for p in paths]
    files = written[0][1]
    pngs = [p for p in files.get("rgba", []) if p.suffix == ".png"] or files.get("alpha", [])
    return {"images": [result(p) for p in pngs], "omnimatte_layers": listed}
