"""Sample the ``[background, alpha]`` pair with ComfyUI's own samplers and the patched clone."""

from __future__ import annotations

from typing import Callable, Optional

import torch

import comfy.model_management
import comfy.sample
import comfy.utils
import latent_preview

from .experts import ExpertPair
from .patching import apply_branch_experts

StepCallback = Callable[[int, torch.Tensor, torch.Tensor, int], None]


def progress_callback(model, steps: int) -> StepCallback:
    """Progress bar + a side-by-side preview (background | alpha); honours cancel every step."""
    previewer = latent_preview.get_previewer(model.load_device, model.model.latent_format)
    bar = comfy.utils.ProgressBar(steps)

    def callback(step: int, x0: torch.Tensor, x: torch.Tensor, total_steps: int) -> None:
        comfy.model_management.throw_exception_if_processing_interrupted()
        preview = None
        if previewer is not None and x0.shape[0] >= 2:
            side_by_side = torch.cat((x0[0:1], x0[1:2]), dim=-1)  # [1, C, T, h, 2w]
            preview = previewer.decode_latent_to_preview_image("JPEG", side_by_side)
        bar.update_absolute(step + 1, total_steps, preview)

    return callback


def sample_layers(model, experts: ExpertPair, positive: list, negative: list, latent: torch.Tensor, seed: int,
                  steps: int, cfg: float, sampler_name: str, scheduler: str, tau: float,
                  callback: Optional[StepCallback] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """latent [2, C, T, h, w] (zeros) → (background [1, C, T, h, w], alpha [1, C, T, h, w] or None).

    The MODEL passed in is not changed: sampling runs on a patched clone. With no expert
    (``experts.background_only``) only the background row is sampled, on the stock model: the
    remover alone (alpha None). Its noise is the pair's first row, so it equals the background a
    pair run gives under masks B and C (which never let background queries see alpha tokens).
    """
    if experts.background_only:
        background = _sample(model, latent[0:1], seed, steps, cfg, sampler_name, scheduler, positive, negative,
                             callback)
        return background, None
    patched = apply_branch_experts(model, experts.effect, experts.quality, tau)
    samples = _sample(patched, latent, seed, steps, cfg, sampler_name, scheduler, positive, negative, callback)
    return samples[0:1], samples[1:2]


def _sample(model, latent: torch.Tensor, seed: int, steps: int, cfg: float, sampler_name: str, scheduler: str,
            positive: list, negative: list, callback: Optional[StepCallback]) -> torch.Tensor:
    """comfy.sample.sample with ComfyUI's seeded noise for ``latent``'s batch."""
    latent = comfy.sample.fix_empty_latent_channels(model, latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, positive, negative, latent,
                               callback=callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
