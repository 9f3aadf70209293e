"""Sample ``[background, alpha]`` pairs with ComfyUI's own samplers and the patched clone.

A latent holds P pairs ``[bg₁, α₁, bg₂, α₂, …]`` (one per object, plus an all-removed pair for
several objects). They run in one sampler call (``batched``) or one call per pair
(``sequential``); the noise is drawn once for the whole batch and sliced, so both give the
same layers (docs/architecture.md). Long clips run in temporal windows (``windows``).
"""

from __future__ import annotations

import logging
from typing import Optional

import torch

import comfy.model_management
import comfy.sample
import comfy.utils
import latent_preview

from .experts import ExpertPair
from .patching import apply_branch_experts, apply_windows
from .windows import WindowPlan

PAIR_MODES = ("auto", "batched", "sequential")
AUTO_HEADROOM = 1.3  # batched only when the estimate fits with 30 % to spare
log = logging.getLogger(__name__)


class SamplingProgress:
    """Progress over sampler calls × steps × windows + a side-by-side preview (background | alpha).

    Cancel is honoured after every step and before every window.
    """

    def __init__(self, model, steps: int):
        self.previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)
        self.steps, self.runs, self.run, self.windows, self.done = steps, 1, 0, 1, 0
        self.bar = None

    @property
    def total(self) -> int:
        return self.steps * self.runs * self.windows

    def begin(self, runs: int, windows: int = 1) -> None:
        self.runs, self.run, self.windows, self.done = runs, 0, windows, 0
        self.bar = comfy.utils.ProgressBar(self.total)

    def window_started(self) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        if self.windows > 1 and self.bar is not None:
            self.done = min(self.done + 1, self.total)
            self.bar.update_absolute(self.done, self.total)

    def __call__(self, step: int, x0: torch.Tensor, x: torch.Tensor, total_steps: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        if self.bar is None:
            self.begin(1)
        preview = None
        if self.previewer is not None and x0.shape[0] >= 2:
            side_by_side = torch.cat((x0[0:1], x0[1:2]), dim=-1)  # [1, C, T, h, 2w]
            preview = self.previewer.decode_latent_to_preview_image("JPEG", side_by_side)
        self.done = min((self.run * total_steps + step + 1) * self.windows, self.total)
        self.bar.update_absolute(self.done, self.total, preview)


def progress_callback(model, steps: int) -> SamplingProgress:
    return SamplingProgress(model, steps)


def conditioning_rows(conditioning: list, rows: list[int]) -> list:
    """The conditioning for a sub-batch: per-row trimasks (``concat_mask`` [2P, …]) cut to ``rows``.

    ComfyUI would otherwise stretch a larger mask batch onto the smaller one by interpolation,
    giving a row another pair's trimask.
    """
    out = []
    for tensor, extra in conditioning:
        extra = dict(extra)
        mask = extra.get("concat_mask")
        if mask is not None and mask.shape[0] > 1:
            extra["concat_mask"] = mask[rows]
        out.append([tensor, extra])
    return out


def choose_pair_mode(model, shape: list[int], mode: str) -> str:
    """``auto`` → ``batched`` when ComfyUI's own estimate for the whole batch (one window of it: shape
    [2P, C, T_window, h, w]) fits in free memory."""
    if mode not in PAIR_MODES:
        raise ValueError(f"pair mode '{mode}' is not one of {', '.join(PAIR_MODES)}")
    if mode != "auto" or shape[0] <= 2:
        return "batched" if mode == "auto" else mode
    device = model.load_device
    needed = model.memory_required(list(shape)) * AUTO_HEADROOM + model.model_size()
    free = comfy.model_management.get_free_memory(device) + model.loaded_size()
    mode = "batched" if needed <= free else "sequential"
    log.info("EasyOmnimatte: %d pairs need about %.1f GB batched, %.1f GB free on %s: running them %s",
             shape[0] // 2, needed / 2**30, free / 2**30, device, mode)
    return mode


def sample_layers(model, experts: ExpertPair, positive: list, negative: list, latent: torch.Tensor, seed: int,
                  steps: int, cfg: float, sampler_name: str, scheduler: str, tau: float,
                  callback: Optional[SamplingProgress] = None, pair_mode: str = "auto",
                  windows: Optional[WindowPlan] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """latent [2P, C, T, h, w] (zeros) → (backgrounds [P, C, T, h, w], alphas [P, C, T, h, w] or None).

    The MODEL passed in is not changed: sampling runs on a patched clone. With no expert
    (``experts.background_only``) only the background rows are sampled, on the stock model: the
    remover alone (alphas None). Their noise is their rows' noise in a pair run, so they equal
    the backgrounds a pair run gives under masks B and C (which never let background queries
    see alpha tokens). ``windows``: clips longer than a window are sampled in temporal windows.
    """
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    windows = windows if windows is not None and windows.count(latent.shape[2]) > 1 else None
    between = callback.window_started if callback is not None else None
    noise = comfy.sample.prepare_noise(latent, seed)  # [2P, …]: one draw, whatever the mode
    pairs = latent.shape[0] // 2
    if experts.background_only:
        runs = [list(range(0, 2 * pairs, 2))] if pair_mode != "sequential" else [[2 * p] for p in range(pairs)]
        sampler_model = apply_windows(model, windows, between) if windows else model
    else:
        sampler_model = apply_branch_experts(model, experts.effect, experts.quality, tau, windows, between)
        shape = list(latent.shape)
        shape[2] = min(shape[2], windows.length) if windows else shape[2]
        batched = choose_pair_mode(sampler_model, shape, pair_mode) == "batched"
        runs = [list(range(2 * pairs))] if batched else [[2 * p, 2 * p + 1] for p in range(pairs)]
    if callback is not None:
        callback.begin(len(runs), windows.count(latent.shape[2]) if windows else 1)
    outputs = []
    for i, rows in enumerate(runs):
        if callback is not None:
            callback.run = i
        whole = rows == list(range(latent.shape[0]))  # no row copies of a long clip's latent and noise
        outputs.append(_sample(sampler_model, latent if whole else latent[rows], noise if whole else noise[rows],
                               seed, steps, cfg, sampler_name, scheduler, conditioning_rows(positive, rows),
                               conditioning_rows(negative, rows), callback))
    samples = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
    if experts.background_only:
        return samples, None
    return samples[0::2], samples[1::2]


def _sample(model, latent: torch.Tensor, noise: torch.Tensor, seed: int, steps: int, cfg: float, sampler_name: str,
            scheduler: str, positive: list, negative: list, callback: Optional[SamplingProgress]) -> torch.Tensor:
    """comfy.sample.sample on ``latent`` with its slice of the run's noise."""
    return comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                               callback=callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
