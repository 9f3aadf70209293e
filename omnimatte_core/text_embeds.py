"""Cached text embeddings: a CONDITIONING saved to and loaded from ``.safetensors``.

Casper's prompts are short background descriptions; caching their umt5 embeddings
means the 11 GB text encoder need not be loaded to run a workflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

FORMAT = "easy-omnimatte/text-embeds"
FORMAT_VERSION = "1"

# A CONDITIONING is a list of [tokens [B, L, D], extras dict]; these extras are kept.
_SCALAR_TYPES = (bool, int, float, str)


def save_conditioning(conditioning: list, path: str | Path) -> Path:
    """Write every tensor of ``conditioning`` (tokens and tensor extras) to ``path``.

    Non-tensor extras that are plain JSON scalars are kept in the metadata; anything
    else (model-specific objects) cannot be stored safely and is refused.
    """
    tensors: dict[str, torch.Tensor] = {}
    scalars: list[dict[str, Any]] = []
    for i, (tokens, extras) in enumerate(conditioning):
        tensors[f"cond.{i}.tokens"] = _checked(tokens, f"entry {i} tokens")
        entry_scalars: dict[str, Any] = {}
        for key, value in extras.items():
            if value is None:
                entry_scalars[key] = None
            elif isinstance(value, torch.Tensor):
                tensors[f"cond.{i}.extra.{key}"] = _checked(value, f"entry {i} '{key}'")
            elif isinstance(value, _SCALAR_TYPES):
                entry_scalars[key] = value
            else:
                raise ValueError(
                    f"conditioning entry {i} holds '{key}' of type {type(value).__name__}, which "
                    "cannot be cached. Save the text encoder's output directly (CLIPTextEncode → "
                    "this node), before adding image or video conditioning.")
        scalars.append(entry_scalars)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "entries": str(len(conditioning)), "scalars": json.dumps(scalars)}
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata)
    return path


def load_conditioning(path: str | Path) -> list:
    """Read a file written by :func:`save_conditioning` back into a CONDITIONING."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path.name} is not a cached text-embedding file "
                             f"(format {metadata.get('format')!r}); save one with OmnimatteSaveTextEmbeds.")
        if metadata.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path.name} has text-embedding format version "
                             f"{metadata.get('format_version')!r}; this pack reads {FORMAT_VERSION}. "
                             "Re-save it with this version of the pack.")
        scalars = json.loads(metadata["scalars"])
        tensors = {key: f.get_tensor(key) for key in f.keys()}
    conditioning = []
    for i in range(int(metadata["entries"])):
        extras: dict[str, Any] = dict(scalars[i])
        prefix = f"cond.{i}.extra."
        for key, value in tensors.items():
            if key.startswith(prefix):
                extras[key[len(prefix):]] = value
        conditioning.append([tensors[f"cond.{i}.tokens"], extras])
    return conditioning


def _checked(tensor: torch.Tensor, what: str) -> torch.Tensor:
    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
        raise ValueError(f"conditioning {what} contains NaN or Inf; re-encode the prompt.")
    return tensor
