"""A toy-world demo clip with its ground truth, stored as one ``.safetensors`` (no pickle).

Written by ``training.toy_world`` from held-out clips; read by the ``LoadOmnimatteToyClip`` node,
the headless runner and the quality tests. Frames are 8-bit (as any video the user brings).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .quantise import to_uint8

FORMAT = "easyomnimatte.toy_clip.v1"


@dataclass
class ToyClip:
    video: torch.Tensor  # [N, H, W, 3] float in [0, 1]: what the model sees
    object_mask: torch.Tensor  # [N, H, W] float {0, 1}: the object to remove (no shadow)
    keep_mask: torch.Tensor  # [N, H, W] float {0, 1}: other objects to keep (all 0 when none)
    gt_alpha: torch.Tensor  # [N, H, W] float: object ∪ shadow
    object_alpha: torch.Tensor  # [N, H, W] float: the object alone
    gt_background: torch.Tensor  # [N, H, W, 3] float: the clean plate (kept objects stay in it)
    fps: float
    meta: dict

    @property
    def shadow_only(self) -> torch.Tensor:
        """bool [N, H, W]: where the ground truth has shadow but (almost) no object."""
        return (self.gt_alpha >= 0.1) & (self.object_alpha < 0.05)

    @property
    def object_region(self) -> torch.Tensor:
        """bool [N, H, W]: the object itself (binarised object alpha)."""
        return self.object_alpha >= 0.5


def _u8(x: torch.Tensor) -> torch.Tensor:
    return to_uint8(x).contiguous()


def save_toy_clip(clip: ToyClip, path: str | Path) -> None:
    tensors = {"video": _u8(clip.video), "object_mask": _u8(clip.object_mask), "keep_mask": _u8(clip.keep_mask),
               "gt_alpha": _u8(clip.gt_alpha), "object_alpha": _u8(clip.object_alpha),
               "gt_background": _u8(clip.gt_background)}
    save_file(tensors, str(path), {"format": FORMAT, "fps": str(clip.fps), "meta": json.dumps(clip.meta)})


def load_toy_clip(path: str | Path) -> ToyClip:
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        if header.get("format") != FORMAT:
            raise ValueError(f"{path.name} is not a toy-world clip (format {header.get('format')!r}, expected "
                             f"{FORMAT!r}); rebuild it with python -m training.toy_world")
        t = {k: f.get_tensor(k).float() / 255.0 for k in f.keys()}
    return ToyClip(t["video"], t["object_mask"], t["keep_mask"], t["gt_alpha"], t["object_alpha"],
                   t["gt_background"], float(header["fps"]), json.loads(header["meta"]))
