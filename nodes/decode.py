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
        to_plate = lambda f: casper.layers_to_source(f, source).clamp(0, 1)  # noqa: E731
        to_matte = lambda f: layers.alpha_from_decoded(casper.layers_to_source(f, source))  # noqa: E731
        if alpha.get(casper.NO_ALPHA_KEY):
            log.warning("%s: the sampler ran background-only (no expert), so there is no alpha to decode; the alpha "
                        "output is all zeros. Use Alpha from Clean Plate on this background for a matte.", NODE)
            plates = _decode_rows(vae, background["samples"], source, "background", (3,), to_plate)  # [P, N, H, W, 3]
            mattes = torch.zeros(plates.shape[:4])
        else:
            plates, mattes = _decode_pairs(vae, background["samples"], alpha["samples"], source, to_plate, to_matte)
        k = len(names)
        layered = ObjectLayers(names, plates[:k], mattes[:k], plates[-1])  # views: no layer is held twice
        return io.NodeOutput(plates[-1], mattes[-1], layered)


def _empty(vae, samples: torch.Tensor, source, channels: tuple[int, ...]) -> torch.Tensor | None:
    """The preallocated output [P, N, H, W, *channels] at the source size (None without a source)."""
    if source is None:
        return None
    return torch.empty((samples.shape[0], source.frames, source.height, source.width, *channels),
                       device=vae.output_device)


def _decode_rows(vae, samples: torch.Tensor, source, name: str, channels: tuple[int, ...], to_layer) -> torch.Tensor:
    """LATENT samples [P, C, T, h, w] → layers [P, N, H, W, *channels] at the source size, decoded a few
    frames at a time into one tensor (so long clips are never held twice)."""
    check_finite(NODE, name, samples)
    out = _empty(vae, samples, source, channels)
    rows = []
    for i, row in enumerate(samples.split(1)):
        comfy.model_management.throw_exception_if_processing_interrupted()
        rows.append(vae_stream.decode_to_source(vae, row, source.frames if source else None, to_layer,
                                                out=None if out is None else out[i]))
    return out if out is not None else torch.stack(rows)


def _decode_pairs(vae, background: torch.Tensor, alpha: torch.Tensor, source, to_plate,
                  to_matte) -> tuple[torch.Tensor, torch.Tensor]:
    """Background and alpha samples [P, C, T, h, w] each → plates [P, N, H, W, 3] and mattes [P, N, H, W].

    All 2P rows go through the VAE in one call (batched: its weights are read once per chunk, not 2P times)
    when ComfyUI's memory estimate says they fit; else row by row as ``_decode_rows``."""
    check_finite(NODE, "background", background)
    check_finite(NODE, "alpha", alpha)
    both = torch.cat((background, alpha))  # [2P, C, T, h, w]
    if not vae_stream.batch_fits(vae, both.shape):
        log.info("%s: the %d rows do not fit one decode by ComfyUI's estimate: decoding them one by one.",
                 NODE, both.shape[0])
        return (_decode_rows(vae, background, source, "background", (3,), to_plate),
                _decode_rows(vae, alpha, source, "alpha", (), to_matte))
    comfy.model_management.throw_exception_if_processing_interrupted()
    plates, mattes = _empty(vae, background, source, (3,)), _empty(vae, alpha, source, ())
    pairs = background.shape[0]
    outs = [None] * (2 * pairs) if source is None else [*plates, *mattes]  # views into the two outputs
    rows = vae_stream.decode_rows_to_source(vae, both, source.frames if source else None,
                                            [to_plate] * pairs + [to_matte] * pairs, outs)
    if source is None:
        return torch.stack(rows[:pairs]), torch.stack(rows[pairs:])
    return plates, mattes
