"""Flow matching on the alpha row: ‖(ε − x0) − v̂(x_t, σ)‖² (DESIGN §1).

Timesteps: u ~ U(0, 1), then Wan/SD3's shift σ = s·u / (1 + (s − 1)·u) with s = 5 by default
(Casper samples with shift 5, so training sees σ spread as the sampler's steps are);
σ is kept in [σ_min, 1] with σ_min = 1e-3 (v̂ is read back from x̂0 by dividing by σ).
Noise and σ come from a generator seeded by (seed, clip index): any process or resumed run
draws the same values for the same clip.

Rows: the background row is the clean-background latent noised at the same σ (its own
noise); its output does not depend on the LoRA (LoRA touches alpha rows only, and masks B/C
keep background queries on background keys), so only the alpha row enters the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .branch_model import BranchConditioning, TrainableExpert, branch_conditioning, branch_velocity
from .encode import EncodedClip
from .features import pad_tokens

SIGMA_MIN = 1e-3


def shift_sigma(u: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * u / (1 + (shift - 1) * u)


def draw_sigma_and_noise(seed: int, index: int, shape: tuple[int, ...], shift: float,
                         sigma_range: tuple[float, float] = (0.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """σ (scalar tensor) and noise [2, *shape] (bg row, alpha row) for one clip, from (seed, index)."""
    gen = torch.Generator().manual_seed((seed * 1_000_003 + index) * 7 + 1)
    u = torch.rand(1, generator=gen)
    lo, hi = sigma_range
    sigma = (lo + (hi - lo) * shift_sigma(u, shift)).clamp(min=SIGMA_MIN)
    noise = torch.randn(2, *shape, generator=gen)
    return sigma[0], noise


@dataclass
class FlowBatch:
    x0: torch.Tensor  # [2B, 16, T, h, w] rows [bg, α] per clip
    noise: torch.Tensor  # [2B, 16, T, h, w]
    sigma: torch.Tensor  # [2B]
    video_latent: torch.Tensor  # [B, 16, T, h, w]
    concat_mask: torch.Tensor  # [B, 4, T, h, w]
    context: torch.Tensor  # [B, L, 4096]
    clip_fea: torch.Tensor | None  # [B, 257, 1280]; None for a T2V-type base
    effect_cells: torch.Tensor | None = None  # [B, 1, T, h, w] the effect's latent cells; None: unweighted loss only

    def to(self, device: torch.device) -> "FlowBatch":
        return FlowBatch(*(t.to(device) if t is not None else None
                           for t in (self.x0, self.noise, self.sigma, self.video_latent, self.concat_mask, self.context,
                                     self.clip_fea, self.effect_cells)))


def flow_batch(encoded: list[EncodedClip], sigmas: list[torch.Tensor], noises: list[torch.Tensor]) -> FlowBatch:
    x0 = torch.cat([torch.cat((e.background, e.alpha)) for e in encoded])
    return FlowBatch(x0=x0, noise=torch.cat(noises), sigma=torch.stack(sigmas).repeat_interleave(2),
                     video_latent=torch.cat([e.video_latent for e in encoded]),
                     concat_mask=torch.cat([e.concat_mask for e in encoded]),
                     context=pad_tokens([e.context for e in encoded]),
                     clip_fea=None if encoded[0].clip_fea is None else torch.cat([e.clip_fea for e in encoded]),
                     effect_cells=None if any(e.effect_cells is None for e in encoded)
                     else torch.cat([e.effect_cells for e in encoded]))


def alpha_flow_loss(trainable: TrainableExpert, batch: FlowBatch, options: dict | None = None,
                    cond: BranchConditioning | None = None, effect_weight: float = 0.0) -> torch.Tensor:
    """Mean squared velocity error over the alpha rows (the odd rows).

    ``effect_weight`` λ > 0 (ours, not the paper's) makes it a weighted mean with weight 1 + λ on the
    latent cells of the clip's effect (``batch.effect_cells``): shadows cover a few per cent of the
    frame, so the plain mean barely sees them. λ = 0 is the paper's loss.
    """
    s = batch.sigma.view(-1, *[1] * (batch.x0.ndim - 1))
    x_t = (1 - s) * batch.x0 + s * batch.noise  # what ModelSamplingDiscreteFlow.noise_scaling computes
    target = batch.noise - batch.x0
    if cond is None:
        cond = branch_conditioning(trainable.patched, x_t, batch.video_latent, batch.concat_mask, batch.context,
                                   batch.clip_fea)
    v = branch_velocity(trainable, x_t, batch.sigma, cond, options)
    error = (v[1::2].float() - target[1::2].float()).pow(2)  # [B, 16, T, h, w]
    if effect_weight <= 0:
        return error.mean()
    return weighted_mean(error, effect_cell_weight(batch, effect_weight))


def effect_cell_weight(batch: FlowBatch, effect_weight: float) -> torch.Tensor:
    """[B, 1, T, h, w] weight 1 + λ on the effect's cells, 1 elsewhere."""
    if batch.effect_cells is None:
        raise ValueError("an effect-weighted loss needs the clips' effect cells (EncodedClip.effect_cells)")
    return 1 + effect_weight * batch.effect_cells.float()


def weighted_mean(error: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Σ w·e / Σ w, the weight broadcast over the channels: a loss on the same scale as the plain mean."""
    weight = weight.expand_as(error)
    return (weight * error).sum() / weight.sum()
