"""Dual-expert sampling: the Effect Expert at high noise, the Quality Expert after τ."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Optional, TypeVar

E = TypeVar("E")


def check_tau(tau: float, where: str = "tau") -> float:
    tau = float(tau)
    if not (0.0 <= tau <= 1.0):  # also refuses NaN
        raise ValueError(f"{where} must be within [0, 1] (σ after shift); got {tau}. "
                         "Use 0.5 (the paper's default): lower = crisper matte, higher = stronger effects.")
    return tau


@dataclass(frozen=True)
class ExpertSchedule(Generic[E]):
    """Chooses the expert for a step from σ as ComfyUI's sampler sees it (after shift).

    σ > τ → effect; σ ≤ τ → quality. With one expert given, it serves every step.
    """

    effect: Optional[E]
    quality: Optional[E]
    tau: float = 0.5

    def __post_init__(self):
        if self.effect is None and self.quality is None:
            raise ValueError("an expert schedule needs at least one expert (effect or quality)")
        check_tau(self.tau)

    def expert_at(self, sigma: float) -> E:
        if self.effect is None:
            return self.quality
        if self.quality is None:
            return self.effect
        return self.effect if sigma > self.tau else self.quality
