"""OmnimatteDecode: background IMAGE and alpha MASK at the source size and frame count."""

from __future__ import annotations

import logging

import torch
from comfy_api.latest import io

from omnimatte_core import conditioning as casper
from omnimatte_core import layers
from .checks import CATEGORY, check_finite

NODE = "OmnimatteDecode"
log = logging.getLogger(__name__)


class OmnimatteDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="OmnimatteDecode",
            display_name="Omnimatte Decode",
            category=CATEGORY,
            description="Decodes the background and alpha latents; the alpha's three channels are averaged and "
                        "clamped to [0, 1]. Padding frames are cropped and the source size restored.",
            inputs=[
                io.Vae.Input("vae", tooltip="The VAE used by OmnimatteConditioning (wan_2.1_vae)."),
                io.Latent.Input("background", tooltip="background from BranchWanSampler."),
                io.Latent.Input("alpha", tooltip="alpha from BranchWanSampler."),
            ],
            outputs=[
                io.Image.Output(display_name="background", tooltip="Clean background plate at the source size."),
                io.Mask.Output(display_name="alpha", tooltip="Alpha matte, 1 = object and its effects."),
            ],
        )

    @classmethod
    def execute(cls, vae, background, alpha) -> io.NodeOutput:
        source = casper.SourceInfo.from_latent(background)
        if source != casper.SourceInfo.from_latent(alpha):
            raise ValueError(f"{NODE}: 'background' and 'alpha' come from different clips or sizes. Connect both "
                             "outputs of the same BranchWanSampler.")
        frames_bg = casper.layers_to_source(_decode(vae, background["samples"], "background"), source).clamp(0, 1)
        if alpha.get(casper.NO_ALPHA_KEY):
            log.warning("%s: the sampler ran background-only (no expert), so there is no alpha to decode; the alpha "
                        "output is all zeros. Use Alpha from Clean Plate on this background for a matte.", NODE)
            return io.NodeOutput(frames_bg, torch.zeros(frames_bg.shape[:3]))
        frames_alpha = _decode(vae, alpha["samples"], "alpha")
        matte = layers.alpha_from_decoded(casper.layers_to_source(frames_alpha, source))
        return io.NodeOutput(frames_bg, matte)


def _decode(vae, samples, name: str):
    """LATENT samples [1, C, T, h, w] → frames [N, H, W, 3]."""
    if samples.shape[0] != 1:
        raise ValueError(f"{NODE}: '{name}' holds {samples.shape[0]} clips; expected one. Connect the "
                         f"{name} output of BranchWanSampler.")
    check_finite(NODE, name, samples)
    frames = vae.decode(samples)  # Wan: [1, T, H, W, 3]
    return frames.reshape(-1, *frames.shape[-3:])
