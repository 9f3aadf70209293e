"""OmnimatteConditioning: Casper's conditioning and the ``[background, alpha]`` latent."""

from __future__ import annotations

import logging

import torch
import node_helpers
from comfy_api.latest import io

from omnimatte_core import conditioning as casper
from omnimatte_core import input_checks, trimask, vae_stream
from .checks import CATEGORY, check_finite, check_mask_fits
from .objects import OmnimatteObjects

NODE = "OmnimatteConditioning"
log = logging.getLogger(__name__)


class OmnimatteConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="OmnimatteConditioning",
            display_name="Omnimatte Conditioning",
            category=CATEGORY,
            description="Builds Casper's inputs: the trimask from the object mask (1 remove / 0.5 neutral / "
                        "0 keep), the VAE latent of the unmasked video, CLIP-vision features, and an empty "
                        "[background, alpha] latent that remembers the source size and frame count.",
            inputs=[
                io.Conditioning.Input("positive", tooltip="Background prompt, e.g. 'a video of a beautiful beach.' "
                                                          "(CLIPTextEncode with umt5, or OmnimatteLoadTextEmbeds)."),
                io.Conditioning.Input("negative", tooltip="Negative prompt (unused at cfg 1, Casper's default)."),
                io.Vae.Input("vae", tooltip="wan_2.1_vae."),
                io.Image.Input("video", tooltip="The frames to decompose, at any size and length; resized to "
                                                "width×height. Long clips are sampled in windows by the sampler."),
                io.Mask.Input("object_mask", optional=True,
                              tooltip="ONE object to separate, per frame or one frame for all; 1 = object (white in "
                                      "a mask video). Its shadows need not be included. Connect this or 'objects'."),
                io.Int.Input("width", default=832, min=16, max=2048, step=16,
                             tooltip="Working width, a multiple of 16 (Casper: 832). Layers come back at the "
                                     "source size."),
                io.Int.Input("height", default=480, min=16, max=2048, step=16,
                             tooltip="Working height, a multiple of 16 (Casper: 480)."),
                io.Float.Input("mask_threshold", default=0.5, min=0.01, max=1.0, step=0.01,
                               tooltip="A mask pixel counts as object at or above this value (after resizing). "
                                       "Raise it (e.g. 0.94) for compressed mask videos with grey edges."),
                io.Int.Input("dilation", default=-1, min=-1, max=256,
                             tooltip="Pixels the object mask is grown by at the working size. -1 = auto: "
                                     "11 px each way at 832×480, scaled with the resolution. Gen-Omnimatte "
                                     "dilates with an 11×11 square (5 px each way): set 5 for their masks."),
                io.ClipVisionOutput.Input("clip_vision_output", optional=True,
                                          tooltip="CLIPVisionEncode (clip_vision_h, crop none) of frame 0. Required "
                                                  "by Casper (an image-to-video-type Wan)."),
                io.Mask.Input("keep_mask", optional=True,
                              tooltip="Other objects to keep untouched (trimask 0), 1 = keep. Where it overlaps the "
                                      "object mask, the object wins."),
                OmnimatteObjects.Input("objects", optional=True,
                                       tooltip="SEVERAL objects, each into its own layer (a chain of Omnimatte "
                                               "Object nodes). Connect this or 'object_mask'."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent", tooltip="[background, alpha] pairs for BranchWanSampler: "
                                                                "one, or one per object plus one with all removed."),
                io.Mask.Output(display_name="trimask", tooltip="The pixel trimask at the working size (padded "
                                                               "frames included), for checking the masks; several "
                                                               "objects: each object's trimask, then all removed, "
                                                               "one after the other."),
            ],
        )

    @classmethod
    def execute(cls, positive, negative, vae, video, width: int, height: int, mask_threshold: float,
                dilation: int, clip_vision_output=None, keep_mask=None, object_mask=None,
                objects=None) -> io.NodeOutput:
        names, masks = _object_masks(object_mask, objects)
        _check_inputs(video, masks, names, keep_mask, width, height)
        n = video.shape[0]
        if n > casper.LONGEST_WINDOW:
            log.info("%s: %d frames, more than the %d Casper was trained on: Branch Wan Sampler samples them in "
                     "time windows (its window_frames; 0 = one window).", NODE, n, casper.LONGEST_WINDOW)
        for name, mask in zip(names, masks):
            suspicious = input_checks.coverage_warning(mask, mask_threshold)
            if suspicious:
                which = "the object_mask input" if names == ("object",) else f"the mask of object '{name}'"
                log.warning("%s: %s Check %s (InvertMask fixes an inverted one).", NODE, suspicious, which)
        dilation_px = trimask.dilation_for_size(height, width) if dilation < 0 else dilation
        inputs = casper.casper_inputs(video, masks, keep_mask, height, width, dilation_px, mask_threshold)
        for name, layer_trimask in zip(names, inputs.trimask):
            if not (layer_trimask == 1.0).any():
                which = "the object mask" if names == ("object",) else f"the mask of object '{name}'"
                raise ValueError(f"{NODE}: {which} is empty in every frame at threshold {mask_threshold}. Check "
                                 "that white = object (LoadImage's mask is inverted: use InvertMask) or lower "
                                 "mask_threshold.")
        video_latent = vae_stream.encode(vae, inputs.source.padded_frames, height, width,
                                         inputs.working_frames)  # [1, 16, T_lat, h/8, w/8]
        values = {"concat_latent_image": video_latent, "concat_mask": inputs.concat_mask.to(video_latent)}
        if clip_vision_output is not None:
            values["clip_vision_output"] = clip_vision_output
        positive = node_helpers.conditioning_set_values(positive, values)
        negative = node_helpers.conditioning_set_values(negative, values)
        latent = {"samples": torch.zeros_like(video_latent).repeat(2 * inputs.pairs, 1, 1, 1, 1),
                  casper.SOURCE_KEY: inputs.source.to_dict(), casper.OBJECTS_KEY: list(names)}
        return io.NodeOutput(positive, negative, latent, inputs.trimask.flatten(0, 1))


def _object_masks(object_mask, objects) -> tuple[tuple[str, ...], list[torch.Tensor]]:
    """Exactly one of the two inputs → (names, masks) in layer order."""
    if (object_mask is None) == (objects is None):
        raise ValueError(f"{NODE}: connect either 'object_mask' (one object) or 'objects' (several, from Omnimatte "
                         "Object nodes), not {}.".format("both" if object_mask is not None else "neither"))
    if object_mask is not None:
        return ("object",), [object_mask]
    if not len(objects):
        raise ValueError(f"{NODE}: 'objects' holds no object. Connect an Omnimatte Object node.")
    return objects.names, list(objects.masks)


def _check_inputs(video: torch.Tensor, masks: list[torch.Tensor], names: tuple[str, ...], keep_mask, width: int,
                  height: int) -> None:
    if width % casper.SIZE_MULTIPLE or height % casper.SIZE_MULTIPLE:
        raise ValueError(f"{NODE}: width and height must be multiples of 16; got {width}×{height}. "
                         f"Use e.g. {_round_up(width)}×{_round_up(height)}.")
    labelled = [("object_mask" if names == ("object",) else f"objects['{name}']", mask)
                for name, mask in zip(names, masks)]
    for label, mask in labelled + [("keep_mask", keep_mask)]:
        if mask is not None:
            check_mask_fits(NODE, label, mask, video)
    check_finite(NODE, "video", video)


def _round_up(size: int) -> int:
    return -(-size // casper.SIZE_MULTIPLE) * casper.SIZE_MULTIPLE
