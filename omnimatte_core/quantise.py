"""8- and 16-bit quantisation of float frames: one rule for files, previews and the toy clips.

Every place that stores or mimics an 8-bit picture rounds the same way, so a clip saved, loaded
and measured compares bit for bit with one quantised in memory.
"""

from __future__ import annotations

import torch


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Float 0..1 (any shape) → uint8 tensor, rounded to the nearest level."""
    return frames.clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8)


def to_uint16(frames: torch.Tensor) -> torch.Tensor:
    """Float 0..1 → the 16-bit levels 0..65535, rounded, as int32 (torch has no uint16 arithmetic)."""
    return frames.clamp(0.0, 1.0).mul(65535.0).round_().to(torch.int32)


def round_to_8bit(frames: torch.Tensor) -> torch.Tensor:
    """Float frames as an 8-bit file would give them back: float32 on the 1/255 grid."""
    return to_uint8(frames.float()).float().div_(255.0)


def rounded(value: float | None, digits: int = 4) -> float | None:
    """A metric for a JSON table: ``digits`` decimals, None kept (a region the clip does not have)."""
    return None if value is None else round(value, digits)
