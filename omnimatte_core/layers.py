"""Layer maths: foreground recovery, RGBA, re-compositing (IMAGE [N, H, W, C] in 0..1).

The model gives background B and alpha α; with the original frames I,
``I = α·F + (1−α)·B`` gives ``F = clip(I − (1−α)·B) / (α + ε)`` per frame.
"""

from __future__ import annotations

import torch

MIN_VISIBLE_ALPHA = 1.0 / 255.0  # below one 8-bit step the foreground is undefined: set to 0


def alpha_from_decoded(decoded: torch.Tensor) -> torch.Tensor:
    """A decoded alpha-matte video [N, H, W, 3] → alpha [N, H, W] (channel mean, clamped)."""
    return decoded[..., :3].mean(dim=-1).clamp(0.0, 1.0)


def recover_foreground(frames: torch.Tensor, background: torch.Tensor, alpha: torch.Tensor,
                       eps: float = 1e-3) -> torch.Tensor:
    """frames, background [N, H, W, 3], alpha [N, H, W] → straight-alpha foreground [N, H, W, 3].

    One new tensor, updated in place (source-size chunks are large; each pass costs).
    """
    a = alpha.unsqueeze(-1)
    foreground = torch.addcmul(frames, a - 1.0, background)  # I − (1−α)·B = α·F
    foreground.clamp_(0.0, 1.0).div_(a + eps).clamp_(0.0, 1.0)
    return foreground.mul_(a >= MIN_VISIBLE_ALPHA)


def rgba(foreground: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """[N, H, W, 3] + [N, H, W] → [N, H, W, 4] with straight (not premultiplied) alpha."""
    return torch.cat((foreground, alpha.unsqueeze(-1)), dim=-1)


def composite(foreground: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor,
              alpha_gain: float = 1.0) -> torch.Tensor:
    """α·F + (1−α)·B with α scaled by ``alpha_gain`` and clamped to [0, 1]."""
    a = (alpha * alpha_gain).clamp(0.0, 1.0).unsqueeze(-1)
    return a * foreground + (1.0 - a) * background


def fit_background(background: torch.Tensor, height: int, width: int, frames: int,
                   loop: bool = True) -> torch.Tensor:
    """Resize [M, h, w, 3] to cover H×W, centre-crop, and match ``frames``.

    A shorter background video loops (``loop``) or holds its last frame; one image is held.
    """
    m, h, w, _ = background.shape
    scale = max(height / h, width / w)
    new_h, new_w = max(height, round(h * scale)), max(width, round(w * scale))
    resized = torch.nn.functional.interpolate(background.movedim(-1, 1), size=(new_h, new_w),
                                              mode="bilinear", align_corners=False).movedim(1, -1)
    top, left = (new_h - height) // 2, (new_w - width) // 2
    cropped = resized[:, top:top + height, left:left + width]
    index = torch.arange(frames)
    index = index % m if loop else index.clamp(max=m - 1)
    return cropped[index].clamp(0.0, 1.0)
