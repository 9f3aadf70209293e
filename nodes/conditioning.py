"""OmnimatteConditioning: Casper's conditioning and the ``[background, alpha]`` latent."""

from __future__ import annotations

import logging

import torch
import node_helpers
from comfy_api.latest import io

from omnimatte_core import conditioning as casper
from omnimatte_core import input_checks, trimask
from .checks import CATEGORY, check_finite, check_mask_fits

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
                io.Image.Input("video", tooltip="The frames to decompose, at any size; resized to width×height."),
                io.Mask.Input("object_mask", tooltip="Object to separate, per frame or one frame for all; 1 = object "
                                                     "(white in a mask video). Its shadows need not be included."),
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
                                     "Casper's 11 px at 832×480, scaled with the resolution."),
                io.ClipVisionOutput.Input("clip_vision_output", optional=True,
                                          tooltip="CLIPVisionEncode (clip_vision_h, crop none) of frame 0. Required "
                                                  "by Casper (an image-to-video-type Wan)."),
                io.Mask.Input("keep_mask", optional=True,
                              tooltip="Other objects to keep untouched (trimask 0), 1 = keep. Where it overlaps the "
                                      "object mask, the object wins."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive"),
                io.Conditioning.Output(display_name="negative"),
                io.Latent.Output(display_name="latent", tooltip="Batch of 2: [background, alpha], for "
                                                                "BranchWanSampler."),
                io.Mask.Output(display_name="trimask", tooltip="The pixel trimask at the working size (padded "
                                                               "frames included), for checking the mask."),
            ],
        )

    @classmethod
    def execute(cls, positive, negative, vae, video, object_mask, width: int, height: int, mask_threshold: float,
                dilation: int, clip_vision_output=None, keep_mask=None) -> io.NodeOutput:
        _check_inputs(video, object_mask, keep_mask, width, height)
        n = video.shape[0]
        if n > casper.LONGEST_WINDOW:
            log.warning("%s: %d frames is more than the %d Casper was trained on; running them as one window "
                        "(slower, and quality may drop). Long-video windows are not supported yet.",
                        NODE, n, casper.LONGEST_WINDOW)
        suspicious = input_checks.coverage_warning(object_mask, mask_threshold)
        if suspicious:
            log.warning("%s: %s Check the object_mask input (InvertMask fixes an inverted one).", NODE, suspicious)
        dilation_px = trimask.dilation_for_size(height, width) if dilation < 0 else dilation
        inputs = casper.casper_inputs(video, object_mask, keep_mask, height, width, dilation_px, mask_threshold)
        if not (inputs.trimask == 1.0).any():
            raise ValueError(f"{NODE}: the object mask is empty in every frame at threshold {mask_threshold}. "
                             "Check that white = object (LoadImage's mask is inverted: use InvertMask) or lower "
                             "mask_threshold.")
        video_latent = vae.encode(inputs.video)  # [1, 16, T_lat, h/8, w/8]
        values = {"concat_latent_image": video_latent, "concat_mask": inputs.concat_mask.to(video_latent)}
        if clip_vision_output is not None:
            values["clip_vision_output"] = clip_vision_output
        positive = node_helpers.conditioning_set_values(positive, values)
        negative = node_helpers.conditioning_set_values(negative, values)
        latent = {"samples": torch.zeros_like(video_latent).repeat(2, 1, 1, 1, 1),
                  casper.SOURCE_KEY: inputs.source.to_dict()}
        return io.NodeOutput(positive, negative, latent, inputs.trimask)


def _check_inputs(video: torch.Tensor, object_mask: torch.Tensor, keep_mask, width: int, height: int) -> None:
    if width % casper.SIZE_MULTIPLE or height % casper.SIZE_MULTIPLE:
        raise ValueError(f"{NODE}: width and height must be multiples of 16; got {width}×{height}. "
                         f"Use e.g. {_round_up(width)}×{_round_up(height)}.")
    for name, mask in (("object_mask", object_mask), ("keep_mask", keep_mask)):
        if mask is not None:
            check_mask_fits(NODE, name, mask, video)
    check_finite(NODE, "video", video)


def _round_up(size: int) -> int:
    return -(-size // casper.SIZE_MULTIPLE) * casper.SIZE_MULTIPLE
