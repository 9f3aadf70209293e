"""A trainable expert on the inference forward: ``omnimatte_core.patching`` with grads on the LoRA.

Nothing of Wan is re-implemented: :func:`attach_trainable_expert` calls
``apply_branch_experts`` (the wrapper and injections inference uses) and turns on
``requires_grad`` for its LoRA factors; :func:`branch_velocity` calls the patched model's
``apply_model`` exactly as ComfyUI's sampler does (wrappers merged by
``comfy.sampler_helpers.prepare_model_patcher``). Gradient checkpointing is one more
injection, on the Wan blocks, under its own key.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Callable

import torch

from omnimatte_core.branch_lora import TARGETS
from omnimatte_core.experts import Expert, ExpertInfo

log = logging.getLogger(__name__)
CHECKPOINT_KEY = "easy_omnimatte_training_checkpointing"


def load_base_model(path: str, dtype: torch.dtype | None = None):
    """The diffusion model exactly as ``UNETLoader`` loads it (weights stay resident while training)."""
    import comfy.sd

    options = {"dtype": dtype} if dtype is not None else {}
    kwargs = {}
    if "disable_dynamic" in inspect.signature(comfy.sd.load_diffusion_model).parameters:
        kwargs["disable_dynamic"] = True  # training needs the weights in place, not streamed
    model = comfy.sd.load_diffusion_model(path, model_options=options, **kwargs)
    model.model.diffusion_model.requires_grad_(False)  # frozen base (ComfyUI v0.3.64 leaves grads on)
    return model


def with_base_lora(model, spec: str):
    """``FILE[:STRENGTH]`` applied like ``LoraLoaderModelOnly``: a weight patch, part of the frozen base."""
    import comfy.sd
    import comfy.utils

    path, strength = spec, 1.0
    head, sep, tail = spec.rpartition(":")
    if sep and tail.replace(".", "", 1).isdigit():
        path, strength = head, float(tail)
    lora = comfy.utils.load_torch_file(path, safe_load=True)
    patched, _ = comfy.sd.load_lora_for_models(model, None, lora, strength, 0)
    return patched


def with_shift(model, shift: float):
    """``ModelSamplingSD3`` as a workflow would set it (only σ spacing at sampling depends on it)."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    return ModelSamplingSD3().patch(model, shift)[0]


@dataclass
class TrainableExpert:
    """The patched clone, its runtime, and the expert whose factors are being trained."""

    patched: object  # ModelPatcher
    runtime: object  # omnimatte_core.patching.BranchRuntime
    template: Expert

    @property
    def weights(self) -> torch.nn.Module:
        """The LoRAWeights module ComfyUI moves with the model (its Parameters are the trained ones)."""
        return self.runtime.weights

    def factor(self, block: int, target: str, which: str) -> torch.nn.Parameter:
        return self.weights.experts[0][f"{block}_{target}_{which}"]

    def parameters(self) -> list[torch.nn.Parameter]:
        """Trainable factors in a fixed order (block, target, down/up) for optimizers and checkpoints."""
        return [self.factor(b, t, w) for b in self.template.info.blocks for t in TARGETS for w in ("down", "up")]

    def parameter_names(self) -> list[str]:
        return [f"blocks.{b}.self_attn.{t}.{w}" for b in self.template.info.blocks for t in TARGETS
                for w in ("down", "up")]

    def to_expert(self, training: dict | None = None) -> Expert:
        """A detached CPU copy as an :class:`Expert` (what ``save_expert`` writes)."""
        info = self.template.info
        if training is not None:
            info = ExpertInfo(info.role, info.rank, info.alpha, info.blocks, info.attention_mask, info.base,
                              info.base_model_name, info.base_model_hash, training)
        lora = {(b, t): (self.factor(b, t, "down").detach().float().cpu().clone(),
                         self.factor(b, t, "up").detach().float().cpu().clone())
                for b in info.blocks for t in TARGETS}
        return Expert(info, lora)


def attach_trainable_expert(model, expert: Expert, checkpointing: bool = False) -> TrainableExpert:
    """Patch ``model`` (unchanged itself) with ``expert`` as the only expert, factors trainable."""
    from omnimatte_core import patching

    if expert.info.role.value == "effect":
        patched = patching.apply_branch_experts(model, expert, None)
    else:
        patched = patching.apply_branch_experts(model, None, expert)
    runtime = patching.branch_runtime(patched)
    for p in runtime.weights.parameters():
        p.requires_grad_(True)
    if checkpointing:
        patched.set_injections(CHECKPOINT_KEY, [_checkpoint_injection(runtime)])
    return TrainableExpert(patched, runtime, expert)


def _checkpoint_injection(runtime):
    """Recompute each Wan block in backward; the expert active at forward time is restored then
    (the wrapper has cleared it by the time backward runs)."""
    import comfy.patcher_extension
    import torch.utils.checkpoint

    swapped: list[tuple[torch.nn.Module, Callable | None]] = []

    def make(original: Callable) -> Callable:
        def forward(*args, **kwargs):
            if not torch.is_grad_enabled():
                return original(*args, **kwargs)
            slot = runtime.active

            def run(*a, **k):
                previous, runtime.active = runtime.active, slot
                try:
                    return original(*a, **k)
                finally:
                    runtime.active = previous
            return torch.utils.checkpoint.checkpoint(run, *args, use_reentrant=False, **kwargs)
        return forward

    def inject(model_patcher) -> None:
        for block in model_patcher.model.diffusion_model.blocks:
            swapped.append((block, block.__dict__.get("forward")))
            block.forward = make(block.forward)

    def eject(model_patcher) -> None:
        for block, previous in reversed(swapped):  # an instance forward set before us comes back
            block.__dict__.pop("forward", None)
            if previous is not None:
                block.forward = previous
        swapped.clear()

    return comfy.patcher_extension.PatcherInjection(inject=inject, eject=eject)


def load_for_training(trainable: TrainableExpert) -> None:
    """Put the Wan model and the LoRA factors on the compute device (a no-op when they are there).

    Backpropagating also needs ``comfy.model_management.in_training = True`` (else the default
    RoPE op has no backward, DESIGN §2); the training loop sets it for its duration.
    """
    from omnimatte_core.patching import load_like_sampler

    load_like_sampler(trainable.patched, force_full_load=True)


def transformer_options(patched) -> dict:
    """``transformer_options`` with the patcher's wrappers merged, as the sampler builds them."""
    import comfy.model_patcher
    import comfy.sampler_helpers

    options = comfy.model_patcher.create_model_options_clone(patched.model_options)
    options.setdefault("transformer_options", {})
    comfy.sampler_helpers.prepare_model_patcher(patched, {}, options)
    return options["transformer_options"]


@dataclass
class BranchConditioning:
    """Per-row conditioning for a [bg, α, bg, α, …] batch."""

    c_concat: torch.Tensor  # [2B, 20, T, h, w]: packed trimask (4) + video latent (16), built by WAN21.concat_cond
    context: torch.Tensor  # [2B, L, 4096] text tokens
    clip_fea: torch.Tensor | None  # [2B, 257, 1280] CLIP-H penultimate states (I2V models)


def branch_conditioning(patched, noise_like: torch.Tensor, video_latent: torch.Tensor, concat_mask: torch.Tensor,
                        context: torch.Tensor, clip_fea: torch.Tensor | None) -> BranchConditioning:
    """Casper's conditioning through ComfyUI's own ``WAN21.concat_cond`` (it computes 1 − mask).

    noise_like [2B, 16, T, h, w]; video_latent [B, 16, T, h, w] (VAE space, unmasked video);
    concat_mask [B, 4, T, h', w'] packed trimask; context [B, L, 4096]; clip_fea [B, 257, 1280].
    """
    pair = lambda t: t.repeat_interleave(2, dim=0)  # noqa: E731  (both rows of a pair see the same inputs)
    device = noise_like.device
    c_concat = patched.model.concat_cond(noise=noise_like, concat_latent_image=pair(video_latent).to(device),
                                         concat_mask=pair(concat_mask).to(device), device=device)
    return BranchConditioning(c_concat, pair(context), pair(clip_fea) if clip_fea is not None else None)


def branch_velocity(trainable: TrainableExpert, x_t: torch.Tensor, sigma: torch.Tensor,
                    cond: BranchConditioning, options: dict | None = None) -> torch.Tensor:
    """The flow velocity v̂(x_t, σ) [2B, 16, T, h, w] of the dual-branch forward (alpha rows carry the LoRA).

    ``apply_model`` returns the denoised x̂0 = x_t − σ·v̂, so v̂ = (x_t − x̂0)/σ (σ > 0 here).
    """
    options = dict(options if options is not None else transformer_options(trainable.patched))
    options["sigmas"] = sigma
    options["cond_or_uncond"] = [0]
    extra = {"clip_fea": cond.clip_fea} if cond.clip_fea is not None else {}
    denoised = trainable.patched.model.apply_model(x_t, sigma, c_concat=cond.c_concat, c_crossattn=cond.context,
                                                   transformer_options=options, **extra)
    return (x_t - denoised) / sigma.view(-1, *[1] * (x_t.ndim - 1))
