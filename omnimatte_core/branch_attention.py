"""Attention masks A/B/C between background and alpha tokens, without a mask tensor.

The two token sets travel as consecutive batch rows ``[bg, α, bg, α, …]`` (one pair per
cond chunk), so a "joint" sequence of 2L tokens is never built. Each mask becomes a
few calls of the host's own attention function:

- A (full): both rows attend to ``[bg; α]`` keys.           (ablation only)
- B (effect): bg → bg keys; α → ``[bg; α]`` keys.           (Effect Expert)
- C (isolated): bg → bg keys; α → α keys = plain batched attention. (Quality Expert)

RoPE was applied to q and k before this point with the same positions for both rows,
which is exactly "the copy gets the same positions".
"""

from __future__ import annotations

from enum import Enum
from typing import Callable

import torch

AttentionFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class AttentionMask(str, Enum):
    FULL = "A"
    EFFECT = "B"
    ISOLATED = "C"


def split_pairs(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[2P, …] → background rows [P, …], alpha rows [P, …]."""
    if t.shape[0] % 2:
        raise ValueError(f"expected [background, alpha] pairs in the batch, got batch {t.shape[0]}")
    pairs = t.unflatten(0, (-1, 2))
    return pairs[:, 0], pairs[:, 1]


def join_pairs(background: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`split_pairs`: [P, …] × 2 → [2P, …] interleaved."""
    return torch.stack((background, alpha), dim=1).flatten(0, 1)


def branch_attention(attention: AttentionFn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     mask: AttentionMask, seq_dim: int = 1) -> torch.Tensor:
    """Self-attention over [bg, α] row pairs under ``mask``.

    q, k, v: [2P, L, heads·head_dim] (``seq_dim`` 1) or [2P, heads, L, head_dim] (``seq_dim`` 2).
    Returns the attention output in the layout ``attention`` returns, rows still paired.
    """
    mask = AttentionMask(mask)
    if mask is AttentionMask.ISOLATED:
        return attention(q, k, v)
    q_bg, q_alpha = split_pairs(q)
    k_bg, k_alpha = split_pairs(k)
    v_bg, v_alpha = split_pairs(v)
    k_joint = torch.cat((k_bg, k_alpha), dim=seq_dim)  # [P, 2L, …]: alpha keys see the same positions
    v_joint = torch.cat((v_bg, v_alpha), dim=seq_dim)
    out_alpha = attention(q_alpha, k_joint, v_joint)
    if mask is AttentionMask.EFFECT:
        out_bg = attention(q_bg, k_bg, v_bg)
    else:
        out_bg = attention(q_bg, k_joint, v_joint)
    return join_pairs(out_bg, out_alpha)
