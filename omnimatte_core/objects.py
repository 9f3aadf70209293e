"""Several objects in one run: their masks in, a layer per object out (docs/architecture.md).

``ObjectMasks`` is what the *Omnimatte Object* chain builds (the ``OMNIMATTE_OBJECTS`` type);
``ObjectLayers`` is what *Omnimatte Decode* gives back (``OMNIMATTE_LAYERS``): per object the
background with that object removed (the others kept) and its alpha, plus the clean plate with
every object removed. Object order is layer order: the first object is the front layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch

from . import layers

NAME_PATTERN = re.compile(r"[^A-Za-z0-9_.-]+")


def clean_name(name: str, index: int) -> str:
    """A folder-safe object name; empty → ``object_<index>``."""
    cleaned = NAME_PATTERN.sub("_", name.strip()).strip("._")
    return cleaned or f"object_{index}"


@dataclass(frozen=True)
class ObjectMasks:
    """Object masks in layer order (front first); each MASK [1 | N, H, W], 1 = object."""

    names: tuple[str, ...] = ()
    masks: tuple[torch.Tensor, ...] = field(default=(), repr=False)

    def add(self, mask: torch.Tensor, name: str) -> "ObjectMasks":
        """A new list with one more object (the chain never changes an upstream node's value)."""
        name = clean_name(name, len(self.names))
        if name in self.names:
            raise ValueError(f"two objects are called '{name}'; give each object its own name")
        return ObjectMasks(self.names + (name,), self.masks + (mask,))

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class ObjectLayers:
    """Decoded layers of a several-object run, at the conditioning's input size.

    backgrounds [K, N, H, W, 3]: object k removed, the others kept (recovers object k's colours);
    alphas [K, N, H, W]: object k and its effects; plate [N, H, W, 3]: every object removed.
    """

    names: tuple[str, ...]
    backgrounds: torch.Tensor
    alphas: torch.Tensor
    plate: torch.Tensor

    def __len__(self) -> int:
        return len(self.names)

    def index(self, key: str | int) -> int:
        """An object by position or name."""
        if isinstance(key, int) or str(key).strip().isdigit():
            i = int(key)
            if not 0 <= i < len(self):
                raise ValueError(f"object {i} does not exist: the layers hold {len(self)} ({', '.join(self.names)})")
            return i
        if key not in self.names:
            raise ValueError(f"no object is called '{key}'; the layers hold {', '.join(self.names)}")
        return self.names.index(key)

    def foregrounds(self, video: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
        """Each object's straight colours from the original frames [N, H, W, 3] → [K, N, H, W, 3]."""
        return torch.stack([layers.recover_foreground(video, bg, a, eps)
                            for bg, a in zip(self.backgrounds, self.alphas)])


def parse_order(order: str, count: int) -> list[int]:
    """'' → 0..K−1 (the given order, front first); '2,0,1' → that order. Every object exactly once."""
    if not order.strip():
        return list(range(count))
    try:
        indices = [int(part) for part in order.replace(" ", "").split(",") if part]
    except ValueError as err:
        raise ValueError(f"order '{order}' must be object numbers separated by commas, e.g. '1,0'") from err
    if sorted(indices) != list(range(count)):
        raise ValueError(f"order '{order}' must list each of the {count} objects (0 to {count - 1}) once, "
                         "front layer first")
    return indices


def composite_stack(foregrounds: torch.Tensor, alphas: torch.Tensor, background: torch.Tensor, order: list[int],
                    alpha_gain: float = 1.0) -> torch.Tensor:
    """Layers [K, N, H, W, 3] + [K, N, H, W] over background [N, H, W, 3], back to front.

    ``order`` lists the front layer first, so the last one is laid down first.
    """
    out = background
    for k in reversed(order):
        out = layers.composite(foregrounds[k], alphas[k], out, alpha_gain)
    return out
