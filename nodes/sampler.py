"""BranchWanSampler: sample background and alpha together, switching experts at τ."""

from __future__ import annotations

import logging

import comfy.samplers
import torch
from comfy_api.latest import io

from omnimatte_core import conditioning as casper
from omnimatte_core.patching import has_image_embedding
from omnimatte_core.sampling import PAIR_MODES, progress_callback, sample_layers
from omnimatte_core.schedule import check_tau
from omnimatte_core.windows import DEFAULT_OVERLAP_FRAMES, TRAINED_FRAMES, WindowPlan
from .checks import CATEGORY, core_error
from .experts import OmnimatteExperts

log = logging.getLogger(__name__)

NODE = "BranchWanSampler"


class BranchWanSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="BranchWanSampler",
            display_name="Branch Wan Sampler (Omnimatte)",
            category=CATEGORY,
            description="Denoises the [background, alpha] pair with the dual-branch Wan forward: the Effect "
                        "Expert while σ > τ, the Quality Expert after. The MODEL you pass in is not changed.",
            inputs=[
                io.Model.Input("model", tooltip="The Casper transformer (UNETLoader) after ModelSamplingSD3 "
                                                "(shift 5)."),
                OmnimatteExperts.Input("experts", tooltip="From LoadOmnimatteExperts. With both experts 'none' only "
                                                          "the background is sampled (the stock remover)."),
                io.Conditioning.Input("positive", tooltip="positive from OmnimatteConditioning."),
                io.Conditioning.Input("negative", tooltip="negative from OmnimatteConditioning."),
                io.Latent.Input("latent", tooltip="latent from OmnimatteConditioning (batch 2: background, alpha)."),
                io.Int.Input("seed", default=43, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Noise seed (Casper's default: 43)."),
                io.Int.Input("steps", default=50, min=1, max=1000,
                             tooltip="Denoising steps (Casper: 50). Fewer is faster, coarser."),
                io.Float.Input("cfg", default=1.0, min=0.0, max=30.0, step=0.1, round=0.01,
                               tooltip="Classifier-free guidance. Casper uses 1.0 (no CFG, one model call per "
                                       "step); above 1 doubles the cost."),
                io.Combo.Input("sampler_name", options=comfy.samplers.KSampler.SAMPLERS, default="euler",
                               tooltip="Any ComfyUI sampler."),
                io.Combo.Input("scheduler", options=comfy.samplers.SCHEDULER_NAMES, default="simple",
                               tooltip="Any ComfyUI scheduler."),
                io.Float.Input("tau", default=0.5, min=0.0, max=1.0, step=0.01,
                               tooltip="Where experts switch, in σ after shift: Effect Expert while σ > τ, Quality "
                                       "Expert after. Lower = crisper matte, higher = stronger effects."),
                io.Combo.Input("pairs", options=list(PAIR_MODES), default="auto", optional=True,
                               tooltip="Several objects only: sample every object's pair in one batch (faster) or "
                                       "one pair at a time (less memory). auto = batched when ComfyUI's memory "
                                       "estimate fits. The layers are the same either way."),
                io.Int.Input("window_frames", default=TRAINED_FRAMES, min=0, max=4097, optional=True,
                             tooltip="Clips longer than this many frames are sampled in overlapping time windows "
                                     "of this length (4n+1; Casper was trained on 81): memory and time then grow "
                                     "linearly with the clip. 0 = the whole clip as one window (attention cost "
                                     "grows with the square of its length, and quality drops past 81)."),
                io.Int.Input("window_overlap", default=DEFAULT_OVERLAP_FRAMES, min=0, max=4096, optional=True,
                             tooltip="Frames shared by neighbouring windows, blended smoothly. More overlap = "
                                     "smoother seams but more windows (cost); less = faster, seams may show."),
            ],
            outputs=[
                io.Latent.Output(display_name="background", tooltip="Clean background plate (object and its "
                                                                     "effects removed); one per pair."),
                io.Latent.Output(display_name="alpha", tooltip="Alpha matte latent, one per pair; OmnimatteDecode "
                                                                "turns it into a MASK."),
            ],
        )

    @classmethod
    def execute(cls, model, experts, positive, negative, latent, seed: int, steps: int, cfg: float,
                sampler_name: str, scheduler: str, tau: float, pairs: str = "auto",
                window_frames: int = TRAINED_FRAMES, window_overlap: int = DEFAULT_OVERLAP_FRAMES) -> io.NodeOutput:
        try:
            tau = check_tau(tau)
            windows = WindowPlan.from_video_frames(window_frames, window_overlap)
        except ValueError as err:
            raise core_error(NODE, err) from err
        samples = _checked_latent(latent)
        for name, cond in (("positive", positive), ("negative", negative)):
            _check_conditioning(name, cond, samples)
        _check_clip_vision(model, positive)
        try:
            background, alpha = sample_layers(model, experts, positive, negative, samples, seed, steps, cfg,
                                              sampler_name, scheduler, tau, progress_callback(model, steps), pairs,
                                              windows)
        except ValueError as err:
            raise core_error(NODE, err) from err
        keep = {key: latent[key] for key in (casper.SOURCE_KEY, casper.OBJECTS_KEY) if key in latent}
        if alpha is None:  # background only: no expert chosen
            log.info("%s: no expert chosen, so only the background was sampled (the remover alone); the alpha "
                     "output is empty. Alpha from Clean Plate makes a matte from this background.", NODE)
            return io.NodeOutput({"samples": background, **keep},
                                 {"samples": torch.zeros_like(background), casper.NO_ALPHA_KEY: True, **keep})
        return io.NodeOutput({"samples": background, **keep}, {"samples": alpha, **keep})


def _checked_latent(latent: dict):
    samples = latent["samples"]
    batch = 2 * casper.pair_count(len(latent.get(casper.OBJECTS_KEY, ["object"])))
    if casper.SOURCE_KEY not in latent or samples.ndim != 5 or samples.shape[0] != batch:
        raise ValueError(f"{NODE}: 'latent' must be the [background, alpha] latent from OmnimatteConditioning "
                         f"(batch {batch}, 5-D); got shape {tuple(samples.shape)}. Connect OmnimatteConditioning's "
                         "latent output directly (no batch or repeat nodes in between).")
    return samples


def _check_conditioning(name: str, cond: list, samples) -> None:
    for _, extra in cond:
        image, mask = extra.get("concat_latent_image"), extra.get("concat_mask")
        if image is None or mask is None:
            raise ValueError(f"{NODE}: '{name}' has no video latent or trimask. Connect {name} from "
                             "OmnimatteConditioning, not straight from the text encoder.")
        if image.shape[-3:] != samples.shape[-3:]:
            raise ValueError(f"{NODE}: '{name}' was made for a latent of {tuple(image.shape[-3:])} (frames, h, w) "
                             f"but 'latent' is {tuple(samples.shape[-3:])}. Use positive, negative and latent "
                             "from the same OmnimatteConditioning node.")
        if mask.shape[0] not in (1, samples.shape[0]):
            raise ValueError(f"{NODE}: '{name}' carries trimasks for {mask.shape[0] // 2} pairs but 'latent' holds "
                             f"{samples.shape[0] // 2}. Use positive, negative and latent from the same "
                             "OmnimatteConditioning node.")


def _check_clip_vision(model, positive: list) -> None:
    try:
        wants_clip = has_image_embedding(model)
    except AttributeError:
        return  # not a Wan model: apply_branch_experts says so
    has_clip = any("clip_vision_output" in extra for _, extra in positive)
    if wants_clip and not has_clip:
        raise ValueError(f"{NODE}: the MODEL has image embeddings (image-to-video type, like Casper) but the "
                         "conditioning carries no CLIP-vision output. Load clip_vision_h with CLIPVisionLoader, "
                         "encode frame 0 with CLIPVisionEncode (crop: none) and connect it to "
                         "OmnimatteConditioning's clip_vision_output.")
    if has_clip and not wants_clip:
        raise ValueError(f"{NODE}: the conditioning carries a CLIP-vision output but the MODEL has no image "
                         "embeddings (a text-to-video-type Wan). Disconnect clip_vision_output from "
                         "OmnimatteConditioning, or load the Casper model the experts were trained on.")
