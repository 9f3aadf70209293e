"""Heuristics for inputs that run but are almost surely wrong: inverted, all-white or swapped masks.

Each check looks at a few small frames ([k, h, w, 3] float in 0..1, e.g. from
``video_files.sample_frames``) and returns warnings as plain sentences; callers decide whether
a warning stops the run (the runner's ``--strict``).
"""

from __future__ import annotations

import torch

from .trimask import CHUNK_FRAMES

FULL_COVERAGE = 0.9  # a mask white over more than this share of the frame is not one object
FOOTAGE_COLOUR = 0.03  # mean channel spread above this: colour footage, not a mask
FOOTAGE_MIDTONES = 0.25  # share of grey pixels above this: footage (a mask is black and white)
MASK_MIDTONES = 0.08  # below this and colourless: a mask, not footage


def _share(flags: torch.Tensor) -> float:
    return flags.float().mean().item()


def frame_stats(frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-frame statistics [k] of frames [k, h, w, 3]: coverage, colour, midtones, white border."""
    grey = frames.mean(dim=-1)  # [k, h, w]
    spread = (frames - grey.unsqueeze(-1)).abs().mean(dim=(-1, -2, -3))
    border = torch.cat((grey[:, :2].flatten(1), grey[:, -2:].flatten(1),
                        grey[:, :, :2].flatten(1), grey[:, :, -2:].flatten(1)), dim=1)
    return {"coverage": (grey >= 0.5).flatten(1).float().mean(1),
            "colour": spread,
            "midtones": ((grey > 0.1) & (grey < 0.9)).flatten(1).float().mean(1),
            "white_border": (border >= 0.5).float().mean(1)}


def looks_like_footage(stats: dict[str, torch.Tensor]) -> bool:
    return _share((stats["colour"] > FOOTAGE_COLOUR) | (stats["midtones"] > FOOTAGE_MIDTONES)) > 0.5


def looks_like_mask(stats: dict[str, torch.Tensor]) -> bool:
    return _share((stats["colour"] < FOOTAGE_COLOUR / 3) & (stats["midtones"] < MASK_MIDTONES)) > 0.5


def mask_warnings(frames: torch.Tensor, name: str = "object mask") -> list[str]:
    """What looks wrong with a mask video: footage instead of a mask, all white, inverted, empty."""
    stats = frame_stats(frames)
    k = frames.shape[0]
    if looks_like_footage(stats):
        return [f"the {name} looks like footage, not a mask (colour or many grey levels in most sampled frames): "
                "were the video and the mask swapped?"]
    full = int((stats["coverage"] > FULL_COVERAGE).sum())
    if full > k / 2:
        return [f"the {name} is white over more than {FULL_COVERAGE:.0%} of the frame in {full} of {k} sampled "
                "frames: it is probably inverted (white must be the object, black the rest) or not this clip's "
                "mask."]
    rim = int(((stats["white_border"] > 0.9) & (stats["coverage"] > 0.3)).sum())
    if rim > k / 2:
        return [f"the {name} is white all along the frame's edges in {rim} of {k} sampled frames: it looks "
                "inverted (white must be the object, black the rest)."]
    if not (stats["coverage"] > 0).any():
        return [f"the {name} is black in every sampled frame: no object to separate (white = object)."]
    return []


def video_warnings(frames: torch.Tensor, name: str = "input video") -> list[str]:
    """What looks wrong with the footage: a black-and-white mask given as the video."""
    if looks_like_mask(frame_stats(frames)):
        return [f"the {name} looks like a black-and-white mask, not footage: were the video and the mask "
                "swapped?"]
    return []


def all_finite(tensor: torch.Tensor) -> bool:
    """No NaN or Inf in a [N, …] tensor, looked at CHUNK_FRAMES frames at a time (bounded memory)."""
    if tensor.ndim == 0:
        return bool(torch.isfinite(tensor))
    return all(bool(torch.isfinite(part).all()) for part in tensor.split(CHUNK_FRAMES))


def coverage_warning(mask: torch.Tensor, threshold: float) -> str | None:
    """For a MASK [N, H, W]: a warning when it covers nearly the whole frame in most frames."""
    coverage = torch.cat([(part >= threshold).flatten(1).float().mean(1) for part in mask.split(CHUNK_FRAMES)])
    full = int((coverage > FULL_COVERAGE).sum())
    if full <= mask.shape[0] / 2:
        return None
    return (f"the object mask covers more than {FULL_COVERAGE:.0%} of the frame in {full} of {mask.shape[0]} "
            "frames; it is probably inverted (white = object) or the wrong input.")
