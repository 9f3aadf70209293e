"""Input checks shared by the nodes; every message names the node, the problem and the fix."""

from __future__ import annotations

import torch

from omnimatte_core import input_checks

CATEGORY = "EasyOmnimatte"


def check_finite(node: str, name: str, tensor: torch.Tensor) -> None:
    """NaN/Inf refused; checked a few frames at a time, so a long clip is never shadowed by a full-size mask."""
    if not input_checks.all_finite(tensor):
        raise ValueError(f"{node}: '{name}' contains NaN or Inf values. Check the node that produced it "
                         "(a failed decode or an upstream division).")


def check_same_video(node: str, reference: tuple[str, torch.Tensor], *others: tuple[str, torch.Tensor]) -> None:
    ref_name, ref = reference
    for name, t in others:
        if t.shape[:3] != ref.shape[:3]:
            raise ValueError(
                f"{node}: '{name}' is {t.shape[0]} frames of {t.shape[2]}×{t.shape[1]} but '{ref_name}' is "
                f"{ref.shape[0]} frames of {ref.shape[2]}×{ref.shape[1]}. Feed layers of the same clip at the "
                "same size (OmnimatteDecode returns them at the source size and frame count).")


def check_mask_fits(node: str, name: str, mask: torch.Tensor, video: torch.Tensor) -> None:
    """A MASK for ``video`` [N, H, W, C]: one frame or N frames, at the video's size, finite."""
    n, h, w = video.shape[:3]
    if mask.shape[0] not in (1, n):
        raise ValueError(f"{node}: '{name}' has {mask.shape[0]} frames but the video has {n}. Give one mask per "
                         "frame (the same frame range as the video) or a single frame for all.")
    if tuple(mask.shape[1:]) != (h, w):
        raise ValueError(f"{node}: '{name}' is {mask.shape[2]}×{mask.shape[1]} but the video is {w}×{h}. Make the "
                         "mask at the video's size (resize it with the same crop as the video).")
    check_finite(node, name, mask)


def core_error(node: str, err: Exception) -> ValueError:
    """A library ValueError re-raised with the node's name in front."""
    return ValueError(f"{node}: {err}")
