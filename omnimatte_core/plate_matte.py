"""An alpha matte with effects from a clean plate, training-free (docs/clean_plate_matte.md).

Given frames V and a plate B with the object and its effects removed, V = α·F + (1−α)·B holds
for some foreground F in [0, 1]. The smallest α that allows it, per pixel and channel, is

    α_c = (B_c − V_c) / B_c          where V is darker than B   (F_c = 0: a shadow)
    α_c = (V_c − B_c) / (1 − B_c)    where V is brighter        (F_c = 1: a highlight)

and α_min = max_c α_c. A darkening shadow gets α ≈ 1 − V/B. Then: the plate's own noise is
removed (a floor estimated far from the object), effects are kept only within a radius of the
object, α = 1 inside the eroded object mask, an edge-aware guided filter on V refines edges, and a
short temporal average steadies it. Frames are processed in chunks (memory follows the chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

CHUNK = 16
FLOOR_QUANTILE = 0.99
QUANTILE_SAMPLES = 1 << 20  # torch.quantile's input limit is 2^24; a sample is plenty


@dataclass(frozen=True)
class PlateMatteSettings:
    effect_radius: int = 48  # px at the frames' size: how far from the object effects are looked for (toy: 48 > 32)
    noise_floor: float = -1.0  # < 0: estimated per chunk from the residual far from the object
    object_erode: int = 1  # px taken off the object mask before it is set to α = 1
    edge_radius: int = 2  # guided-filter radius in px (0 = off)
    edge_eps: float = 1e-3  # guided-filter regulariser: larger = smoother, less edge-following
    temporal_frames: int = 1  # α averaged over ±this many frames (0 = off)


def minimal_alpha(video: torch.Tensor, plate: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """frames, plate [n, H, W, 3] → the smallest α consistent with some F in [0, 1], [n, H, W]."""
    diff = video - plate
    darker = (-diff).clamp(min=0) / plate.clamp(min=eps)
    brighter = diff.clamp(min=0) / (1.0 - plate).clamp(min=eps)
    return torch.maximum(darker, brighter).amax(dim=-1).clamp(0.0, 1.0)


def running_sum(x: torch.Tensor, r: int, dim: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Sum over [i − r, i + r] along ``dim`` of the elements that exist, in ``dtype``, O(1) per element.

    From the cumulative sum S: S[min(i + r, n − 1)] − S[i − r − 1] (nothing before the start);
    float64 by default so that the difference of two long sums keeps float32's precision.
    """
    dim = dim % x.dim()
    n = x.shape[dim]
    sums = x.to(dtype).cumsum(dim)
    out = torch.empty_like(sums)
    reach = min(r, n - 1)
    out.narrow(dim, 0, n - reach).copy_(sums.narrow(dim, reach, n - reach))
    out.narrow(dim, n - reach, reach).copy_(sums.narrow(dim, n - 1, 1).expand_as(out.narrow(dim, n - reach, reach)))
    if r + 1 < n:
        out.narrow(dim, r + 1, n - r - 1).sub_(sums.narrow(dim, 0, n - r - 1))
    return out


def dilate(mask: torch.Tensor, px: int) -> torch.Tensor:
    """Binary dilation of [n, H, W] (float 0/1) by a (2px+1)² square, clipped at the borders.

    A pixel is set when its window holds any set pixel: window counts, a row pass then a column pass
    (separable, the same cost for any px). Counts are integers, exact in float32 up to 2²⁴.
    """
    if px <= 0:
        return mask
    rows = running_sum(mask, px, -1, torch.float32) > 0  # [n, H, W]: a set pixel in the row window
    return (running_sum(rows, px, -2, torch.float32) > 0).to(mask.dtype)


def erode(mask: torch.Tensor, px: int) -> torch.Tensor:
    return 1.0 - dilate(1.0 - mask, px)


def window_count(n: int, r: int, device: torch.device) -> torch.Tensor:
    """How many of 0..n−1 lie in [i − r, i + r], per i: [n] float64."""
    i = torch.arange(n, device=device, dtype=torch.float64)
    return (i + r + 1).clamp(max=n) - (i - r).clamp(min=0)


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)² window, [..., H, W], edges averaged over the pixels that exist.

    Separable: a row sum then a column sum; a window's pixel count is its row count times its column
    count. Float64 between the passes, one rounding to x's dtype at the end.
    """
    if r <= 0:
        return x
    h, w = x.shape[-2:]
    count = window_count(h, r, x.device)[:, None] * window_count(w, r, x.device)  # [H, W]
    return running_sum(running_sum(x, r, -1), r, -2).div_(count).to(x.dtype)


def guided_filter(guide: torch.Tensor, source: torch.Tensor, r: int, eps: float) -> torch.Tensor:
    """He et al.'s guided filter, grey guide [n, H, W]: ``source`` smoothed, keeping the guide's edges.

    In float64: var and cov are differences of near-equal means, divided by var + eps (eps ≈ 1e-3), so
    float32 rounding there would move the result by up to ~1e-5.
    """
    dtype, guide, source = source.dtype, guide.double(), source.double()
    mean_i, mean_p, mean_ii, mean_ip = box(torch.stack((guide, source, guide * guide, guide * source)), r)
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + eps)
    mean_a, mean_b = box(torch.stack((a, mean_p - a * mean_i)), r)
    return (mean_a * guide + mean_b).to(dtype)


def temporal_average(alpha: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over ±k frames, [N, H, W]; the ends average the frames that exist."""
    if k <= 0 or alpha.shape[0] < 2:
        return alpha
    n, h, w = alpha.shape
    series = alpha.reshape(n, h * w).T.unsqueeze(1)  # [HW, 1, N]
    smoothed = F.avg_pool1d(series, 2 * k + 1, stride=1, padding=k, count_include_pad=False)
    return smoothed.squeeze(1).T.reshape(n, h, w)


def noise_floor(raw: torch.Tensor, far: torch.Tensor) -> float:
    """The FLOOR_QUANTILE of α_min where no effect can be: the plate's own error."""
    values = raw[far.bool()]
    if values.numel() == 0:
        return 0.0
    if values.numel() > QUANTILE_SAMPLES:
        values = values[torch.randperm(values.numel(), generator=torch.Generator().manual_seed(0))[:QUANTILE_SAMPLES]]
    return min(float(torch.quantile(values.float(), FLOOR_QUANTILE)), 0.5)


def _chunk_matte(video: torch.Tensor, plate: torch.Tensor, obj: torch.Tensor, s: PlateMatteSettings
                 ) -> tuple[torch.Tensor, float]:
    raw = minimal_alpha(video, plate)
    near = dilate(obj, s.effect_radius)
    far = 1.0 - dilate(obj, 2 * s.effect_radius)
    floor = noise_floor(raw, far) if s.noise_floor < 0 else s.noise_floor
    alpha = ((raw - floor) / (1.0 - floor)).clamp(0.0, 1.0) * near
    alpha = torch.maximum(alpha, erode(obj, s.object_erode))
    if s.edge_radius > 0:
        alpha = guided_filter(video.mean(dim=-1), alpha, s.edge_radius, s.edge_eps)
    return alpha.clamp(0.0, 1.0), floor


def plate_matte(video: torch.Tensor, plate: torch.Tensor, object_mask: torch.Tensor,
                settings: PlateMatteSettings = PlateMatteSettings(),
                device: torch.device | None = None) -> tuple[torch.Tensor, list[float]]:
    """frames, plate [N, H, W, 3] (same size) + object mask [N, H, W] (1 = object) → α [N, H, W], floors.

    Each chunk is computed on ``device`` (default: where the video is; the CPU instead of MPS) and
    the matte comes back where the video is. The floors (one per chunk) say how noisy the plate was.
    """
    device = torch.device(device or video.device)
    if device.type == "mps":  # no float64 there, which the box sums and the guided filter need
        device = torch.device("cpu")
    parts, floors = [], []
    obj = (object_mask >= 0.5).float()
    for start in range(0, video.shape[0], CHUNK):
        end = start + CHUNK
        chunk = [t[start:end].to(device, torch.float32) for t in (video[..., :3], plate[..., :3], obj)]
        alpha, floor = _chunk_matte(*chunk, settings)
        parts.append(alpha.to(video.device))
        floors.append(floor)
    return temporal_average(torch.cat(parts), settings.temporal_frames).clamp(0.0, 1.0), floors


def plate_difference(video: torch.Tensor, plate: torch.Tensor) -> float:
    """Mean |V − B|: near 0 means the plate still holds the object (nothing was removed)."""
    return float((video[..., :3].float() - plate[..., :3].float()).abs().mean())
