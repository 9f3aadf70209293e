"""AlphaFromCleanPlate: an alpha matte with shadows and reflections from any clean plate, no experts."""

from __future__ import annotations

import logging

import comfy.model_management
from comfy_api.latest import io

from omnimatte_core import frame_geometry as geometry
from omnimatte_core import plate_matte
from .checks import CATEGORY, check_finite, check_mask_fits

NODE = "AlphaFromCleanPlate"
DEFAULTS = plate_matte.PlateMatteSettings()
SAME_PLATE = 1.0 / 255.0  # mean |V − B| below one 8-bit step: nothing was removed
log = logging.getLogger(__name__)


class AlphaFromCleanPlate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE,
            display_name="Alpha from Clean Plate (Omnimatte)",
            category=CATEGORY,
            description="A training-free alpha matte that includes the object's shadows and reflections: the "
                        "smallest α with V = α·F + (1−α)·B for the original frames V and a clean plate B (object "
                        "AND effects removed, from Omnimatte Decode, core VOID or any remover). Feed its alpha to "
                        "Recover Foreground with the same plate.",
            inputs=[
                io.Image.Input("video", tooltip="The original frames."),
                io.Image.Input("clean_plate", tooltip="The background with the object and its effects removed; "
                                                      "any size (resized to the video), one frame or one per frame."),
                io.Mask.Input("object_mask", tooltip="The object (1 = object), per frame or one for all; α = 1 "
                                                     "inside it."),
                io.Int.Input("effect_radius", default=DEFAULTS.effect_radius, min=0, max=2048,
                             tooltip="Pixels around the object where shadows and reflections are looked for. Larger "
                                     "catches longer shadows but also more of the plate's errors."),
                io.Float.Input("noise_floor", default=DEFAULTS.noise_floor, min=-1.0, max=0.5, step=0.01,
                               tooltip="Differences between video and plate below this count as plate noise. -1 = "
                                       "estimated from the frame far from the object."),
                io.Int.Input("edge_radius", default=DEFAULTS.edge_radius, min=0, max=64,
                             tooltip="Guided-filter radius: the matte follows the video's edges (0 = off)."),
                io.Int.Input("temporal_frames", default=DEFAULTS.temporal_frames, min=0, max=8,
                             tooltip="α averaged over ± this many frames against flicker (0 = off; moving "
                                     "objects smear at high values)."),
            ],
            outputs=[io.Mask.Output(display_name="alpha", tooltip="1 = object and its effects.")],
        )

    @classmethod
    def execute(cls, video, clean_plate, object_mask, effect_radius: int, noise_floor: float, edge_radius: int,
                temporal_frames: int) -> io.NodeOutput:
        video = video[..., :3]
        plate = _fit_plate(video, clean_plate[..., :3])
        mask = _fit_mask(video, object_mask)
        for name, t in (("video", video), ("clean_plate", plate)):
            check_finite(NODE, name, t)
        difference = plate_matte.plate_difference(video, plate)
        if difference < SAME_PLATE:
            log.warning("%s: the clean plate is almost identical to the video (mean difference %.4f): nothing was "
                        "removed, so the matte is the object mask alone. Connect a plate with the object removed.",
                        NODE, difference)
        settings = plate_matte.PlateMatteSettings(effect_radius=effect_radius, noise_floor=noise_floor,
                                                  edge_radius=edge_radius, temporal_frames=temporal_frames)
        alpha, floors = plate_matte.plate_matte(video, plate.to(video), mask.to(video), settings,
                                                device=comfy.model_management.get_torch_device())
        log.info("%s: plate noise floor %.3f–%.3f", NODE, min(floors), max(floors))
        return io.NodeOutput(alpha)


def _fit_plate(video, plate):
    n, h, w = video.shape[:3]
    if plate.shape[0] not in (1, n):
        raise ValueError(f"{NODE}: 'clean_plate' has {plate.shape[0]} frames but the video has {n}. Give the plate "
                         "of this clip (same frame range) or a single still plate.")
    plate = geometry.resize_frames(plate.float(), h, w)
    return plate.expand(n, -1, -1, -1) if plate.shape[0] == 1 else plate


def _fit_mask(video, mask):
    check_mask_fits(NODE, "object_mask", mask, video)
    return mask.expand(video.shape[0], -1, -1) if mask.shape[0] == 1 else mask
