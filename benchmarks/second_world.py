"""A second clip generator, independent of the training data, so the yardstick is not the training set's twin.

The toy world's clips (``training.toy_data``) are soft textured blobs whose pseudo-shadow is the
object's alpha squashed below its lowest point, darkening the ground to black, over smooth
procedural plates. Experts trained on them could learn those particulars rather than "object and
its effects"; a test world drawn from the same code would not notice (issue 22). This module
shares none of that code and differs on every axis:

- objects: regular polygons, stars and rings, drawn from a polar radius function with a one-pixel
  soft edge, in soft two-colour stripes, sliding and turning slowly (≤ 1.6 px and ≤ 1.5° a frame);
- shadows: either a *drop shadow* (the silhouette itself, sheared sideways, stretched and offset
  up or down by 7–13 px, blurred 1.5–3 px) or a *contact shadow* (a soft ellipse at the object's
  base); the shadow is a dark *tinted* layer (blue-grey, not black) at 45–75 % opacity;
- plates: stripes, a two-colour gradient or a checker, all with fixed fine noise, static.

Its scales are the toy world's (objects 18–28 px in radius, stripes of 9–40 px, checker cells of
16–32 px), so that an 8× VAE can carry it: the yardstick should measure the layer, not the codec.

Clips are 128×128, 17 frames, seeded per index (``SEED + index``) and deterministic. The object mask
is the binarised object alpha (α ≥ 0.5), undilated: the best a user's mask can be, so
``mask_as_alpha`` is the strongest trivial answer. Video, plate and alphas are 8-bit, as the toy
world's demo clips are.

Only ``benchmarks`` and ``tests`` may import this module; ``training`` never does (a test checks it),
so nothing is ever trained on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from omnimatte_core.toy_clip import ToyClip
from omnimatte_core.quantise import round_to_8bit

SIZE = 128
FRAMES = 17
SEED = 2_024_022  # this world's only seed: every clip is SEED + index
SHAPES = ("polygon", "star", "ring")
SHADOWS = ("drop", "contact")
PLATES = ("stripes", "gradient", "checker")


@dataclass
class SecondWorldClip:
    """One clip with its full ground truth, before 8-bit storage."""

    video: torch.Tensor  # [N, H, W, 3] in [0, 1]
    plate: torch.Tensor  # [N, H, W, 3] the clean plate (no object, no shadow)
    foreground: torch.Tensor  # [N, H, W, 3] the layer's colour (object over its tinted shadow)
    object_alpha: torch.Tensor  # [N, H, W]
    gt_alpha: torch.Tensor  # [N, H, W] object ∪ shadow
    object_mask: torch.Tensor  # [N, H, W] {0, 1}
    meta: dict

    def as_toy_clip(self, fps: float = 8.0) -> ToyClip:
        """In 8-bit, as ``omnimatte_eval.toy_eval`` and the nodes take any clip."""
        q = round_to_8bit
        return ToyClip(q(self.video), self.object_mask.clone(), torch.zeros_like(self.object_mask),
                       q(self.gt_alpha), q(self.object_alpha), q(self.plate), fps, dict(self.meta))


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def _choice(g: torch.Generator, options: tuple[str, ...]) -> str:
    return options[int(torch.randint(len(options), (), generator=g))]


def _colour(g: torch.Generator, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(3, generator=g)  # [3]


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates (y, x), each [H, W]."""
    axis = torch.arange(size, dtype=torch.float32) + 0.5
    return torch.meshgrid(axis, axis, indexing="ij")


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, H, W] with reflected borders (σ in pixels)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / sigma) ** 2)
    taps = taps / taps.sum()
    x = image.unsqueeze(1)  # [N, 1, H, W]
    x = torch.nn.functional.pad(x, (radius, radius, 0, 0), mode="reflect")
    x = torch.nn.functional.conv2d(x, taps.view(1, 1, 1, -1))
    x = torch.nn.functional.pad(x, (0, 0, radius, radius), mode="reflect")
    return torch.nn.functional.conv2d(x, taps.view(1, 1, -1, 1)).squeeze(1)


@dataclass(frozen=True)
class Shape:
    """A star-shaped outline in polar form: radius r(θ) about a centre, scaled per axis."""

    kind: str
    radius: float  # outer radius, px
    points: int  # polygon sides / star points
    depth: float  # star: how far the valleys go in (share of radius)
    inner: float  # ring: hole radius as a share of the outer radius
    aspect: float  # x stretch (y is 1)

    def alpha(self, dy: torch.Tensor, dx: torch.Tensor, angle: float) -> torch.Tensor:
        """Coverage in [0, 1] at offsets (dy, dx) from the centre, turned by ``angle`` (radians), soft over ~1 px."""
        cos, sin = math.cos(angle), math.sin(angle)
        u = (dx * cos + dy * sin) / self.aspect
        v = -dx * sin + dy * cos
        rho = torch.sqrt(u * u + v * v)  # distance in the shape's frame
        theta = torch.atan2(v, u)
        if self.kind == "polygon":  # regular n-gon: its edge's distance at θ, apothem = r·cos(π/n)
            sector = 2 * math.pi / self.points
            off = torch.remainder(theta, sector) - sector / 2
            edge = self.radius * math.cos(math.pi / self.points) / torch.cos(off)
        elif self.kind == "star":
            edge = self.radius * (1 - self.depth * (0.5 + 0.5 * torch.cos(self.points * theta)))
        else:
            edge = torch.full_like(rho, self.radius)
        cover = (edge - rho + 0.5).clamp(0, 1)
        if self.kind == "ring":
            cover = cover * (rho - self.inner * self.radius + 0.5).clamp(0, 1)
        return cover


def _shape(g: torch.Generator) -> Shape:
    kind = _choice(g, SHAPES)
    low, high = (3, 8) if kind == "polygon" else (4, 7)  # sides / star points
    points = int(torch.randint(low, high, (), generator=g))
    return Shape(kind, radius=_uniform(g, 18, 28), points=points, depth=_uniform(g, 0.25, 0.4),
                 inner=_uniform(g, 0.35, 0.5), aspect=_uniform(g, 0.8, 1.25))


def _plate(g: torch.Generator, size: int) -> tuple[torch.Tensor, str]:
    """A static plate [H, W, 3]: stripes, gradient or checker, with fixed fine noise."""
    kind = _choice(g, PLATES)
    y, x = _grid(size)
    a, b = _colour(g, 0.45, 0.95), _colour(g, 0.3, 0.85)
    if kind == "stripes":
        angle, period = _uniform(g, 0, math.pi), _uniform(g, 20, 40)
        t = 0.5 + 0.5 * torch.sin(2 * math.pi * (x * math.cos(angle) + y * math.sin(angle)) / period)
    elif kind == "gradient":
        angle = _uniform(g, 0, 2 * math.pi)
        t = ((x - size / 2) * math.cos(angle) + (y - size / 2) * math.sin(angle)) / size + 0.5
    else:
        cell = int(torch.randint(16, 33, (), generator=g))
        wave = torch.sin(math.pi * x / cell) * torch.sin(math.pi * y / cell)  # ± in alternate cells
        t = 0.5 + 0.3 * torch.tanh(4 * wave)  # a checker whose edges soften over ~2 px
    t = t.clamp(0, 1).unsqueeze(-1)  # [H, W, 1]
    noise = 0.015 * torch.randn(size, size, 3, generator=g)
    return (a * t + b * (1 - t) + noise).clamp(0, 1), kind


def generate_clip(index: int, size: int = SIZE, frames: int = FRAMES) -> SecondWorldClip:
    """Clip ``index`` of the second world (deterministic: seeded with ``SEED + index``)."""
    g = torch.Generator().manual_seed(SEED + index)
    plate, plate_kind = _plate(g, size)
    shape = _shape(g)
    shadow_kind = _choice(g, SHADOWS)
    y, x = _grid(size)
    margin = shape.radius + 16
    start = torch.tensor([_uniform(g, margin, size - margin), _uniform(g, margin, size - margin)])  # (y, x)
    velocity = torch.tensor([_uniform(g, -0.8, 0.8), _uniform(g, -1.4, 1.4)])  # px per frame
    angle0, spin = _uniform(g, 0, 2 * math.pi), math.radians(_uniform(g, -1.5, 1.5))
    stripe_a, stripe_b = _colour(g, 0.05, 0.95), _colour(g, 0.05, 0.95)
    stripe_period, stripe_angle = _uniform(g, 9, 16), _uniform(g, 0, math.pi)
    tint = torch.tensor([0.06, 0.07, 0.16]) * _uniform(g, 0.5, 1.5)  # blue-grey, never black
    opacity = _uniform(g, 0.45, 0.75)
    shear, stretch = _uniform(g, -0.6, 0.6), _uniform(g, 0.8, 1.3)
    offset = torch.tensor([_uniform(g, 7, 13) * (1 if torch.rand((), generator=g) < 0.5 else -1),
                           _uniform(g, -10, 10)])  # drop shadow (dy, dx)
    blur = _uniform(g, 1.5, 3.0)

    objects, shadows, colours = [], [], []
    for t in range(frames):
        cy, cx = (start + velocity * (t - frames // 2)).tolist()
        angle = angle0 + spin * t
        objects.append(shape.alpha(y - cy, x - cx, angle))
        phase = (x - cx) * math.cos(stripe_angle + angle) + (y - cy) * math.sin(stripe_angle + angle)
        mix = (0.5 + 0.5 * torch.sin(2 * math.pi * phase / stripe_period)).unsqueeze(-1)  # [H, W, 1]
        colours.append(stripe_a * mix + stripe_b * (1 - mix))
        if shadow_kind == "drop":  # the silhouette, sheared sideways and stretched about the object's centre
            sy = (y - cy - offset[0]) / stretch
            shadows.append(shape.alpha(sy, x - cx - offset[1] - shear * sy, angle))
        else:  # a soft ellipse where the object meets the ground (0.8 radius below its centre)
            base = cy + shape.radius * 0.8
            ry, rx = 0.35 * shape.radius, 1.2 * shape.radius * shape.aspect
            shadows.append((1.6 * (1 - ((y - base) / ry) ** 2 - ((x - cx) / rx) ** 2)).clamp(0, 1))
    object_alpha = torch.stack(objects)  # [N, H, W]
    shadow = opacity * _blur(torch.stack(shadows), blur).clamp(0, 1)  # [N, H, W]
    object_colour = torch.stack(colours)  # [N, H, W, 3]

    # The layer: the object over its shadow (α_o + α_s·(1 − α_o)); its colour the alpha-weighted mix.
    gt_alpha = object_alpha + shadow * (1 - object_alpha)
    weight_o = (object_alpha / gt_alpha.clamp_min(1e-6)).unsqueeze(-1)
    foreground = (weight_o * object_colour + (1 - weight_o) * tint) * (gt_alpha > 0).unsqueeze(-1)
    plates = plate.unsqueeze(0).expand(frames, size, size, 3)
    video = gt_alpha.unsqueeze(-1) * foreground + (1 - gt_alpha.unsqueeze(-1)) * plates
    meta = {"world": "second", "index": index, "seed": SEED + index, "shape": shape.kind, "shadow": shadow_kind,
            "plate": plate_kind, "shadow_opacity": round(opacity, 3)}
    return SecondWorldClip(video.clamp(0, 1), plates.contiguous(), foreground, object_alpha, gt_alpha,
                           (object_alpha >= 0.5).float(), meta)


def held_out_clips(count: int, first: int = 0) -> list[ToyClip]:
    """Clips ``first`` … ``first + count − 1`` as ToyClips (8-bit), the type ``omnimatte_eval.toy_eval`` measures."""
    return [generate_clip(i).as_toy_clip() for i in range(first, first + count)]
