"""OmnimatteDecode: background IMAGE and alpha MASK at the source size and frame count."""

from __future__ import annotations

import logging

import comfy.model_management
import torch
from comfy_api.latest import io

from omnimatte_core import conditioning as casper
from omnimatte_core import layers, vae_stream
from omnimatte_core.objects import ObjectLayers
from .checks import CATEGORY, check_finite
from .objects import OmnimatteLayers

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
                        "clamped to [0, 1]. Padding frames are cropped and the source size restored. With several "
                        "objects, background and alpha are all objects together (the clean plate and their joint "
                        "matte) and 'layers' holds each object's own.",
            inputs=[
                io.Vae.Input("vae", tooltip="The VAE used by OmnimatteConditioning (wan_2.1_vae)."),
                io.Latent.Input("background", tooltip="background from BranchWanSampler."),
                io.Latent.Input("alpha", tooltip="alpha from BranchWanSampler."),
            ],
            outputs=[
                io.Image.Output(display_name="background", tooltip="Clean background plate at the source size "
                                                                   "(every object removed)."),
                io.Mask.Output(display_name="alpha", tooltip="Alpha matte, 1 = object and its effects (all objects "
                                                             "together)."),
                OmnimatteLayers.Output(display_name="layers", tooltip="Each object's layer, for Omnimatte Select "
                                                                      "Layer, Composite Layer Stack and Save "
                                                                      "Omnimatte Layers."),
            ],
        )

    @classmethod
    def execute(cls, vae, background, alpha) -> io.NodeOutput:
        source = casper.SourceInfo.from_latent(background)
        if source != casper.SourceInfo.from_latent(alpha) or background["samples"].shape != alpha["samples"].shape:
            raise ValueError(f"{NODE}: 'background' and 'alpha' come from different clips or sizes. Connect both "
                             "outputs of the same BranchWanSampler.")
        names = tuple(background.get(casper.OBJECTS_KEY, ["object"]))
        pairs = background["samples"].shape[0]
        if pairs != casper.pair_count(len(names)):
            raise ValueError(f"{NODE}: 'background' holds {pairs} clips but was made for {len(names)} object(s). "
                             "Connect the outputs of BranchWanSampler directly.")
        plates = _decode_rows(vae, background["samples"], source, "background", (3,),
                              lambda f: casper.layers_to_source(f, source).clamp(0, 1))  # [P, N, H, W, 3]
        if alpha.get(casper.NO_ALPHA_KEY):
            log.warning("%s: the sampler ran background-only (no expert), so there is no alpha to decode; the alpha "
                        "output is all zeros. Use Alpha from Clean Plate on this background for a matte.", NODE)
            mattes = torch.zeros(plates.shape[:4])
        else:
            mattes = _decode_rows(vae, alpha["samples"], source, "alpha", (),
                                  lambda f: layers.alpha_from_decoded(casper.layers_to_source(f, source)))
        k = len(names)
        layered = ObjectLayers(names, plates[:k], mattes[:k], plates[-1])  # views: no layer is held twice
        return io.NodeOutput(plates[-1], mattes[-1], layered)


def _decode_rows(vae, samples: torch.Tensor, source, name: str, channels: tuple[int, ...], to_layer) -> torch.Tensor:
    """LATENT samples [P, C, T, h, w] → layers [P, N, H, W, *channels] at the source size, decoded a few
    frames at a time into one tensor (so long clips are never held twice)."""
    check_finite(NODE, name, samples)
    out = None
    if source is not None:
        out = torch.empty((samples.shape[0], source.frames, source.height, source.width, *channels),
                          device=vae.output_device)
    rows = []
    for i, row in enumerate(samples.split(1)):
        comfy.model_management.throw_exception_if_processing_interrupted()
        rows.append(vae_stream.decode_to_source(vae, row, source.frames if source else None, to_layer,
                                                out=None if out is None else out[i]))
    return out if out is not None else torch.stack(rows)
