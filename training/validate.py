"""Held-out synthetic clips sampled with ComfyUI's sampler and the patched model; alpha MSE
on the object region and on the shadow (effect) region separately."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .dataset import Clip
from .encode import EncodedClip


@dataclass
class HeldOut:
    clip: Clip
    encoded: EncodedClip
    index: int


def conditioning(encoded: EncodedClip) -> list:
    """A CONDITIONING as OmnimatteConditioning would give the sampler (Casper inputs)."""
    import comfy.clip_vision
    import node_helpers

    values = {"concat_latent_image": encoded.video_latent, "concat_mask": encoded.concat_mask}
    if encoded.clip_fea is not None:  # I2V-type base (Casper); a T2V-type base takes none
        vision = comfy.clip_vision.Output()
        vision.penultimate_hidden_states = encoded.clip_fea
        values["clip_vision_output"] = vision
    return node_helpers.conditioning_set_values([[encoded.context, {"pooled_output": None}]], values)


def sample_alpha(model, experts, vae, encoded: EncodedClip, steps: int, seed: int, tau: float = 0.5) -> torch.Tensor:
    """Sample the [bg, α] pair as BranchWanSampler does (``sample_layers``; euler, simple, cfg 1, as Casper)
    and decode the alpha as OmnimatteDecode does → alpha [N, H, W]."""
    from omnimatte_core.layers import alpha_from_decoded
    from omnimatte_core.sampling import sample_layers

    positive = conditioning(encoded)
    latent = torch.zeros(2, *encoded.video_latent.shape[1:])
    with torch.no_grad():
        _, alpha = sample_layers(model, experts, positive, positive, latent, seed, steps, 1.0, "euler", "simple", tau)
        decoded = vae.decode(alpha)  # [1, N, H, W, 3] (Wan)
    return alpha_from_decoded(decoded.reshape(-1, *decoded.shape[-3:]).float()).cpu()


def region_mse(pred: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> float | None:
    n = min(pred.shape[0], target.shape[0])
    region = region[:n]
    if not region.any():
        return None
    return float((pred[:n] - target[:n]).pow(2)[region].mean())


def mean_or_none(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def evaluate(model, experts, vae, held_out: list[HeldOut], steps: int, seed: int, tau: float = 0.5) -> dict:
    """Alpha MSE per region, averaged over clips that have that region (``experts``: an ExpertPair)."""
    object_mse, effect_mse = [], []
    for item in held_out:
        pred = sample_alpha(model, experts, vae, item.encoded, steps, seed + item.index, tau)
        object_mse.append(region_mse(pred, item.clip.gt_alpha, item.clip.object_mask))
        effect_mse.append(region_mse(pred, item.clip.gt_alpha, item.clip.shadow_region))
    return {"object_mse": mean_or_none(object_mse), "shadow_mse": mean_or_none(effect_mse),
            "clips": len(held_out), "steps": steps}
