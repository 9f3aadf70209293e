"""Attach experts to a ComfyUI Wan MODEL. The one module that touches the model patcher.

Hook choice (see docs/architecture.md): everything happens on a ``model.clone()`` under
one key, ``PATCH_KEY``:

- a ``DIFFUSION_MODEL`` wrapper picks the expert for the step from σ and checks the
  batch holds ``[bg, α]`` pairs;
- injections swap the ``forward`` of each block's ``self_attn`` (to route its attention
  calls through the branch masks) and of its ``q/k/v/o`` linears (to add the LoRA delta
  to alpha rows). The stock forwards still run: nothing of Wan's code is re-implemented;
- the LoRA factors live in a small ModelPatcher attached as an additional model, so
  ComfyUI loads and offloads them with the Wan model.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension

from .branch_attention import AttentionMask, branch_attention
from .branch_lora import TARGETS, add_to_alpha_rows
from .experts import BaseSignature, Expert
from .schedule import ExpertSchedule
from .windows import WindowPlan, run_windowed

PATCH_KEY = "easy_omnimatte_branch"
log = logging.getLogger(__name__)


class LoRAWeights(torch.nn.Module):
    """The experts' LoRA factors as frozen parameters (moved by ComfyUI with the model)."""

    def __init__(self, experts: list[Expert]):
        super().__init__()
        self.experts = torch.nn.ModuleList()
        for expert in experts:
            factors = torch.nn.ParameterDict()
            for (block, target), (down, up) in expert.lora.items():
                factors[f"{block}_{target}_down"] = torch.nn.Parameter(down.clone(), requires_grad=False)
                factors[f"{block}_{target}_up"] = torch.nn.Parameter(up.clone(), requires_grad=False)
            self.experts.append(factors)


@dataclass
class _Slot:
    """An expert as the forward uses it: its index in LoRAWeights, mask, scale, blocks."""

    index: int
    expert: Expert

    @property
    def mask(self) -> AttentionMask:
        return self.expert.info.attention_mask


class BranchRuntime:
    """Per-clone state shared by the wrapper and the injected forwards."""

    def __init__(self, schedule: ExpertSchedule, weights: LoRAWeights):
        self.schedule = schedule
        self.weights = weights
        self.active: Optional[_Slot] = None
        # (σ, role) of recent diffusion-model calls, for progress display and tests; bounded
        self.history: deque[tuple[float, str]] = deque(maxlen=4096)

    # -- the DIFFUSION_MODEL wrapper -------------------------------------------------------
    def diffusion_model_wrapper(self, executor, x, timestep, context, *args, **kwargs):
        """x: [2P, C, T, H, W], pairs [bg, α] per cond chunk; picks the expert for this σ."""
        if x.shape[0] % 2:
            raise ValueError(f"the latent must hold [background, alpha] pairs, but the model received "
                             f"batch {x.shape[0]}. Feed the batch-2 latent made by OmnimatteConditioning "
                             "and keep batch_size 1 elsewhere")
        transformer_options = kwargs.get("transformer_options", args[2] if len(args) > 2 else {})
        sigma = _step_sigma(transformer_options, timestep)
        slot = self.schedule.expert_at(sigma)
        self.history.append((sigma, slot.expert.info.role.value))
        self.active = slot
        try:
            return executor(x, timestep, context, *args, **kwargs)
        finally:
            self.active = None

    # -- injected forwards -----------------------------------------------------------------
    def self_attention_forward(self, original: Callable) -> Callable:
        def forward(x, freqs, transformer_options={}, **kwargs):
            slot = self.active
            if slot is None or slot.mask is AttentionMask.ISOLATED:
                return original(x, freqs, transformer_options=transformer_options, **kwargs)
            options = dict(transformer_options)
            options["optimized_attention_override"] = _mask_override(
                slot.mask, transformer_options.get("optimized_attention_override"))
            return original(x, freqs, transformer_options=options, **kwargs)
        return forward

    def linear_forward(self, block: int, target: str, original: Callable) -> Callable:
        def forward(x, *args, **kwargs):
            y = original(x, *args, **kwargs)
            slot = self.active
            if slot is None or (block, target) not in slot.expert.lora:
                return y
            factors = self.weights.experts[slot.index]
            return add_to_alpha_rows(y, x, factors[f"{block}_{target}_down"], factors[f"{block}_{target}_up"],
                                     slot.expert.scale)
        return forward


def _step_sigma(transformer_options: dict, timestep: torch.Tensor) -> float:
    """σ of this call as the sampler sees it (after shift); ComfyUI passes it as 'sigmas'."""
    sigmas = transformer_options.get("sigmas")
    if sigmas is None:  # flow models receive t = σ·1000
        return float(timestep.flatten()[0]) / 1000.0
    return float(sigmas.flatten()[0])


def _mask_override(mask: AttentionMask, previous: Optional[Callable]) -> Callable:
    """An ``optimized_attention_override`` splitting self-attention by ``mask``.

    Each sub-call goes to the host's attention function (or a previous override), so
    flash/sage/pytorch backends keep working; no mask tensor is built.
    """
    def override(func, q, k, v, *args, **kwargs):
        def attention(q_, k_, v_):
            if previous is not None:
                return previous(func, q_, k_, v_, *args, **kwargs)
            return func(q_, k_, v_, *args, **kwargs)
        seq_dim = 2 if kwargs.get("skip_reshape", False) else 1
        return branch_attention(attention, q, k, v, mask, seq_dim=seq_dim)
    return override


def base_signature(model) -> BaseSignature:
    """Signature of the Wan diffusion model inside a MODEL (no weight reads)."""
    wan = getattr(getattr(model, "model", None), "diffusion_model", None)
    blocks = getattr(wan, "blocks", None)
    if wan is None or blocks is None or not all(hasattr(b, "self_attn") for b in blocks) \
            or not all(hasattr(blocks[0].self_attn, t) for t in TARGETS):
        kind = type(wan).__name__ if wan is not None else type(model).__name__
        raise ValueError(f"the MODEL is a {kind}, not a Wan 2.1 diffusion model. Load the Casper (Wan2.1-Fun-InP) "
                         "transformer with UNETLoader")
    return BaseSignature(dim=int(wan.dim), num_layers=len(blocks), in_dim=int(wan.in_dim))


def has_image_embedding(model) -> bool:
    """Whether the Wan model takes CLIP-vision features (I2V-type, like Casper)."""
    return getattr(model.model.diffusion_model, "img_emb", None) is not None


def apply_branch_experts(model, effect: Optional[Expert], quality: Optional[Expert], tau: float = 0.5,
                         windows: Optional[WindowPlan] = None, between: Optional[Callable[[], None]] = None):
    """Return a patched ``model.clone()`` that runs the dual-branch forward with the experts.

    ``model`` is left untouched. With ``windows`` each model call runs per temporal window
    (``windows.run_windowed``; ``between`` before each window). A MODEL carrying core context
    windows is refused: they crash on the ``[bg, α]`` pair batch.
    """
    _refuse_context_windows(model)
    base = base_signature(model)
    experts = [e for e in (effect, quality) if e is not None]
    for expert in experts:
        expert.check_base(base)
        _warn_if_other_base_file(model, expert)
    weights = LoRAWeights(experts)
    slots = {id(e): _Slot(i, e) for i, e in enumerate(experts)}
    schedule = ExpertSchedule(slots.get(id(effect)), slots.get(id(quality)), tau)
    runtime = BranchRuntime(schedule, weights)

    patched = model.clone()
    _set_wrappers(patched, ([_window_wrapper(windows, between)] if windows else []) + [runtime.diffusion_model_wrapper])
    lora_blocks = sorted({block for e in experts for block in e.info.blocks})
    patched.set_injections(PATCH_KEY, [_injection(runtime, lora_blocks)])
    weights_patcher = comfy.model_patcher.ModelPatcher(
        weights, load_device=model.load_device, offload_device=model.offload_device)
    patched.set_additional_models(PATCH_KEY, [weights_patcher])
    patched.set_attachments(PATCH_KEY, runtime)
    return patched


def apply_windows(model, windows: WindowPlan, between: Optional[Callable[[], None]] = None):
    """A ``model.clone()`` whose diffusion model runs per temporal window: the remover alone, no experts."""
    _refuse_context_windows(model)
    patched = model.clone()
    _set_wrappers(patched, [_window_wrapper(windows, between)])
    return patched


def _refuse_context_windows(model) -> None:
    if model.model_options.get("context_handler") is not None:
        raise ValueError("the MODEL carries ComfyUI context windows (WanContextWindowsManual / ContextWindows), "
                         "which break on the [background, alpha] pair batch. Remove that node: the sampler's own "
                         "window_frames and window_overlap run long clips in windows")


def _set_wrappers(patched, wrappers: list[Callable]) -> None:
    """Our DIFFUSION_MODEL wrappers, all under PATCH_KEY, outermost first."""
    kind = comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL
    patched.remove_wrappers_with_key(kind, PATCH_KEY)
    for wrapper in wrappers:
        patched.add_wrapper_with_key(kind, PATCH_KEY, wrapper)


def _window_wrapper(plan: WindowPlan, between: Optional[Callable[[], None]]) -> Callable:
    """Splits each model call in time (x [B, C, T, h, w], conditioning channels included) into windows.

    Wan sizes its RoPE grid from each call's input, so positions restart at 0 in every window.
    """
    def wrapper(executor, x, timestep, context, *args, **kwargs):
        return run_windowed(lambda window: executor(window, timestep, context, *args, **kwargs), x, plan, between)
    return wrapper


def models_to_load(patcher) -> list:
    """The MODEL and its additional models (the experts' LoRA factors), as ComfyUI's sampler loads them.

    ``load_models_gpu([patcher])`` alone leaves the LoRA factors where they are (the CPU), and the
    first alpha-row LoRA on a GPU fails with a device mismatch.
    """
    return [patcher] + patcher.get_nested_additional_models()


def load_like_sampler(patcher, **kwargs) -> None:
    """``load_models_gpu`` on :func:`models_to_load`: for callers that run the diffusion model themselves."""
    comfy.model_management.load_models_gpu(models_to_load(patcher), **kwargs)


def branch_runtime(model) -> Optional[BranchRuntime]:
    """The runtime attached by :func:`apply_branch_experts`, if any."""
    return model.get_attachment(PATCH_KEY)


def _injection(runtime: BranchRuntime, lora_blocks: list[int]):
    swapped: list[tuple[torch.nn.Module, Any]] = []

    def swap(module: torch.nn.Module, make: Callable[[Callable], Callable]) -> None:
        previous = module.__dict__.get("forward")  # an instance-level forward someone set before us
        swapped.append((module, previous))
        module.forward = make(module.forward)

    def inject(model_patcher) -> None:
        blocks = model_patcher.model.diffusion_model.blocks
        for i, block in enumerate(blocks):
            swap(block.self_attn, runtime.self_attention_forward)
            if i in lora_blocks:
                for target in TARGETS:
                    swap(getattr(block.self_attn, target),
                         lambda original, i=i, target=target: runtime.linear_forward(i, target, original))

    def eject(model_patcher) -> None:
        while swapped:
            module, previous = swapped.pop()
            if previous is None:
                module.__dict__.pop("forward", None)
            else:
                module.forward = previous

    return comfy.patcher_extension.PatcherInjection(inject=inject, eject=eject)


def _warn_if_other_base_file(model, expert: Expert) -> None:
    init = getattr(model, "cached_patcher_init", None)
    expected = expert.info.base_model_name
    if not expected or not init or not init[1]:
        return
    actual = os.path.basename(str(init[1][0]))
    if actual != expected:
        log.warning("EasyOmnimatte: %s was trained on '%s' but the MODEL was loaded from '%s'; results may "
                    "differ if these are different weights.", expert.name, expected, actual)
