"""In-memory experts: which blocks carry LoRA, which attention mask the forward uses."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum

import torch

from .branch_attention import AttentionMask
from .branch_lora import TARGETS


class ExpertRole(str, Enum):
    EFFECT = "effect"
    QUALITY = "quality"


# The paper's configurations (DESIGN §1).
DEFAULT_MASK = {ExpertRole.EFFECT: AttentionMask.EFFECT, ExpertRole.QUALITY: AttentionMask.ISOLATED}


@dataclass(frozen=True)
class BaseSignature:
    """What an expert must match in the Wan model it is applied to."""

    dim: int
    num_layers: int
    in_dim: int

    def describe(self) -> str:
        return f"dim {self.dim}, {self.num_layers} blocks, in_dim {self.in_dim}"


@dataclass(frozen=True)
class ExpertInfo:
    role: ExpertRole
    rank: int
    alpha: float
    blocks: tuple[int, ...]
    attention_mask: AttentionMask
    base: BaseSignature
    base_model_name: str = ""
    base_model_hash: str = ""
    training: dict = field(default_factory=dict, compare=False, hash=False)

    def to_metadata(self) -> dict[str, str]:
        return {
            "role": self.role.value, "rank": str(self.rank), "alpha": repr(float(self.alpha)),
            "blocks": json.dumps(list(self.blocks)), "attention_mask": self.attention_mask.value,
            "base_dim": str(self.base.dim), "base_num_layers": str(self.base.num_layers),
            "base_in_dim": str(self.base.in_dim), "base_model_name": self.base_model_name,
            "base_model_hash": self.base_model_hash, "training": json.dumps(self.training, sort_keys=True),
        }


LoRAKey = tuple[int, str]  # (block index, one of TARGETS)


@dataclass
class Expert:
    """A loaded expert: LoRA factors per (block, linear) plus how the forward treats tokens."""

    info: ExpertInfo
    lora: dict[LoRAKey, tuple[torch.Tensor, torch.Tensor]]  # (down [r, in], up [out, r])
    strength: float = 1.0
    source: str = ""  # file the expert came from, for messages

    @property
    def scale(self) -> float:
        return self.info.alpha / self.info.rank * self.strength

    @property
    def name(self) -> str:
        return self.source or f"{self.info.role.value} expert"

    def with_strength(self, strength: float) -> "Expert":
        return Expert(self.info, self.lora, float(strength), self.source)

    def check_base(self, base: BaseSignature) -> None:
        """Refuse a model this expert was not trained for, saying what differs."""
        if self.info.base != base:
            raise ValueError(
                f"{self.name} was trained for a Wan model with {self.info.base.describe()}, but the MODEL "
                f"has {base.describe()}. Load the base model the expert was trained on "
                f"({self.info.base_model_name or 'see the file metadata'}) or train an expert for this one.")


def zero_lora_expert(role: ExpertRole, base: BaseSignature, rank: int, blocks: list[int] | None = None,
                     mask: AttentionMask | None = None, alpha: float | None = None, seed: int | None = None,
                     init_std: float = 0.0) -> Expert:
    """A fresh expert: ``down`` random (or zero), ``up`` zero, the usual LoRA start.

    With ``init_std`` > 0 both factors are random (tests and benchmarks need a non-zero delta).
    """
    role = ExpertRole(role)
    if blocks is None:
        blocks = list(range(base.num_layers))
    gen = torch.Generator().manual_seed(seed if seed is not None else 0)
    lora = {}
    for b in blocks:
        for t in TARGETS:
            down = torch.randn(rank, base.dim, generator=gen) / base.dim ** 0.5
            up = torch.randn(base.dim, rank, generator=gen) * init_std
            lora[(b, t)] = (down, up)
    info = ExpertInfo(role=role, rank=rank, alpha=float(alpha if alpha is not None else rank),
                      blocks=tuple(blocks), attention_mask=AttentionMask(mask or DEFAULT_MASK[role]), base=base)
    return Expert(info, lora)


@dataclass(frozen=True)
class ExpertPair:
    """What LoadOmnimatteExperts hands to the sampler: either expert may be absent. With neither, the
    sampler runs background-only (the stock remover; no alpha row)."""

    effect: Expert | None
    quality: Expert | None

    @property
    def background_only(self) -> bool:
        return self.effect is None and self.quality is None

    def __post_init__(self):
        for expert, role in ((self.effect, ExpertRole.EFFECT), (self.quality, ExpertRole.QUALITY)):
            if expert is not None and expert.info.role is not role:
                raise ValueError(f"{expert.name} is a {expert.info.role.value} expert but was given as the "
                                 f"{role.value} expert. Swap the two file choices")
        if self.effect is not None and self.quality is not None and self.effect.info.base != self.quality.info.base:
            raise ValueError(f"the experts were trained for different models ({self.effect.info.base.describe()} vs "
                             f"{self.quality.info.base.describe()}). Use two experts trained on the same base model")

    def describe(self) -> str:
        names = [f"{e.info.role.value}: {e.name} ×{e.strength:g}" for e in (self.effect, self.quality) if e]
        return "; ".join(names) or "none (background only)"
