"""Pieces of a plain training loop shared by the trainers (toy VAE, toy remover, experts)."""

from __future__ import annotations

import math
import time

import torch


def warmup_cosine(lr: float, step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then a cosine decay to 0 at ``total``."""
    return lr * min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * step / total))


def anneal_factor(step: int, total: int, anneal_steps: int) -> float:
    """The learning-rate multiplier of step ``step`` (0-based) of ``total``: 1, then a linear fall over the
    last ``anneal_steps`` steps (the last step gets 1/anneal_steps). A constant rate keeps the expert's
    weights jittering at batch 2; a short decay at the end settles them, and a run resumed with a larger
    ``total`` still starts its decay at the new end."""
    start = total - anneal_steps
    if anneal_steps <= 0 or step < start:
        return 1.0
    return max(total - step, 0) / anneal_steps


def optimizer_step(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], loss: torch.Tensor,
                   max_grad_norm: float = 1.0) -> float:
    """Backward, clip, step; returns the loss as a float."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return float(loss.detach())


class TimeBudget:
    """Fits a run's step count to a wall-clock budget, so one build stage fits one short GPU lease.

    The seconds per step are measured between step ``warmup`` and step ``probe`` of this run (the
    first steps carry cuDNN's algorithm search and allocator growth: on an H200 they made the toy
    VAE look 3× slower than it runs). Then ``iterations`` shrinks (never grows) to what the
    remaining budget allows, so a cosine schedule still ends at its end. The trainer records the
    count it settled on; that count, passed back as ``--iterations`` without a budget, repeats it.
    """

    def __init__(self, seconds: float | None, probe: int = 30, multiple: int = 50, warmup: int = 10):
        self.seconds, self.probe, self.multiple, self.warmup = seconds, probe, multiple, warmup
        self.started = time.perf_counter()
        self.fixed = seconds is None
        self.mark: tuple[int, float] | None = None

    def iterations(self, step: int, requested: int, start_step: int = 0) -> int:
        """The step count to run to, given ``step`` steps done (``start_step`` of them before this run)."""
        done = step - start_step
        if self.fixed or done < self.warmup:
            return requested
        now = time.perf_counter()
        if self.mark is None:
            self.mark = (step, now)
        if done < self.probe:
            return requested
        self.fixed = True
        per_step = (now - self.mark[1]) / max(step - self.mark[0], 1)
        affordable = step + int((self.seconds - (now - self.started)) / per_step)
        fitted = max(step, affordable // self.multiple * self.multiple)
        return min(requested, max(fitted, step + 1))

    def iterations_with_decay(self, step: int, requested: int, decay_steps: int, start_step: int = 0) -> int:
        """``iterations``, never shorter than a learning-rate decay of ``decay_steps`` over the run's last
        steps, so a fitted run still ends with its whole decay (``expired`` stops it if that overruns)."""
        return max(self.iterations(step, requested, start_step), min(decay_steps, requested))

    def expired(self) -> bool:
        return self.seconds is not None and time.perf_counter() - self.started > self.seconds
