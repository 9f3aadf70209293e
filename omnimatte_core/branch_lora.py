"""Activation-space LoRA applied to the alpha rows only.

A weight patch would change W for every token; the experts must leave the background
tokens on the frozen path, so the low-rank update is added to the outputs instead:
``y_α = W·x_α + (x_α·Aᵀ)·Bᵀ·scale`` with A = ``down`` [r, in], B = ``up`` [out, r].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

TARGETS = ("q", "k", "v", "o")  # the self-attention linears the experts adapt


def lora_delta(x: torch.Tensor, down: torch.Tensor, up: torch.Tensor, scale: float) -> torch.Tensor:
    """x [..., in] → (x·downᵀ)·upᵀ·scale [..., out], computed in x's dtype."""
    return F.linear(F.linear(x, down.to(x.dtype)), up.to(x.dtype)) * scale


def add_to_alpha_rows(y: torch.Tensor, x: torch.Tensor, down: torch.Tensor, up: torch.Tensor,
                      scale: float) -> torch.Tensor:
    """Add the LoRA delta of ``x`` to the alpha rows (odd batch rows) of ``y``.

    x: [2P, L, in], y: [2P, L, out] (the frozen linear's output for x). Returns y updated
    in place on its alpha rows (autograd follows the in-place update).
    """
    if x.shape[0] % 2:
        raise ValueError(f"expected [background, alpha] pairs in the batch, got batch {x.shape[0]}")
    alpha_x = x.unflatten(0, (-1, 2))[:, 1]  # [P, L, in]
    y_pairs = y.unflatten(0, (-1, 2))
    y_pairs[:, 1] += lora_delta(alpha_x, down, up, scale)
    return y
