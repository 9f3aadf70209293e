"""One ``.safetensors`` file per expert: LoRA tensors + string metadata, validated on load.

Tensors: ``blocks.{i}.self_attn.{q,k,v,o}.lora_A.weight`` [r, dim] and ``.lora_B.weight``
[dim, r]. Metadata: format, format_version, role, rank, alpha, blocks, attention_mask,
base signature (dim, num_layers, in_dim), base model name/hash, training settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .branch_attention import AttentionMask
from .branch_lora import TARGETS
from .experts import BaseSignature, Expert, ExpertInfo, ExpertRole

FORMAT = "easy-omnimatte/expert"
FORMAT_VERSION = "1"
SUPPORTED_VERSIONS = ("1",)
_PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle"}


class ExpertFileError(ValueError):
    """A file that cannot be used as an expert; the message names the file, problem and fix."""

    def __init__(self, path: str | Path, problem: str, fix: str):
        super().__init__(f"{Path(path).name}: {problem}. {fix}")
        self.path = str(path)


def tensor_key(block: int, target: str, factor: str) -> str:
    return f"blocks.{block}.self_attn.{target}.lora_{factor}.weight"


def save_expert(expert: Expert, path: str | Path) -> Path:
    """Write ``expert`` in the format :func:`load_expert` reads (strength is not stored)."""
    tensors = {}
    for (block, target), (down, up) in expert.lora.items():
        tensors[tensor_key(block, target, "A")] = down.detach().float().cpu().contiguous()
        tensors[tensor_key(block, target, "B")] = up.detach().float().cpu().contiguous()
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, **expert.info.to_metadata()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata)
    return path


def load_expert(path: str | Path, strength: float = 1.0) -> Expert:
    """Read and validate an expert file; every problem raises :class:`ExpertFileError`."""
    path = Path(path)
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise ExpertFileError(path, "pickled weights are never loaded (they can run code)",
                              "Use the .safetensors file that training/ writes")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ExpertFileError(path, f"not a readable .safetensors file ({err})",
                              "Re-download or re-export the expert; pickled checkpoints are not accepted") from err
    info = _parse_metadata(path, metadata)
    lora = _collect_lora(path, info, tensors)
    return Expert(info, lora, float(strength), str(path))


_cache: dict[tuple[str, int, int], Expert] = {}


def load_expert_cached(path: str | Path, strength: float = 1.0) -> Expert:
    """:func:`load_expert`, remembered by path, size and modification time (a changed file reloads)."""
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _cache:
        for old in [k for k in _cache if k[0] == key[0]]:
            del _cache[old]
        _cache[key] = load_expert(path)
    return _cache[key].with_strength(strength)


def _parse_metadata(path: Path, md: dict[str, str]) -> ExpertInfo:
    if md.get("format") != FORMAT:
        raise ExpertFileError(path, f"metadata 'format' is {md.get('format')!r}, not {FORMAT!r} (not an "
                              "EasyOmnimatte expert)", "Pick an expert file written by training/")
    if md.get("format_version") not in SUPPORTED_VERSIONS:
        raise ExpertFileError(path, f"unknown expert format version {md.get('format_version')!r} (this pack "
                              f"reads {', '.join(SUPPORTED_VERSIONS)})", "Update the pack, or re-export the expert")
    try:
        info = ExpertInfo(
            role=ExpertRole(md["role"]), rank=int(md["rank"]), alpha=float(md["alpha"]),
            blocks=tuple(int(b) for b in json.loads(md["blocks"])),
            attention_mask=AttentionMask(md["attention_mask"]),
            base=BaseSignature(int(md["base_dim"]), int(md["base_num_layers"]), int(md["base_in_dim"])),
            base_model_name=md.get("base_model_name", ""), base_model_hash=md.get("base_model_hash", ""),
            training=json.loads(md.get("training") or "{}"))
    except (KeyError, ValueError, TypeError) as err:
        raise ExpertFileError(path, f"metadata is incomplete or malformed ({err!r})",
                              "Re-export the expert with training/ of this pack") from err
    bad_blocks = [b for b in info.blocks if not 0 <= b < info.base.num_layers]
    if info.rank < 1 or not info.blocks or bad_blocks or len(set(info.blocks)) != len(info.blocks):
        raise ExpertFileError(path, f"metadata lists blocks {list(info.blocks)} with rank {info.rank} for a "
                              f"{info.base.num_layers}-block model", "Re-export the expert with training/")
    return info


def _collect_lora(path: Path, info: ExpertInfo, tensors: dict[str, torch.Tensor]) -> dict:
    expected = {tensor_key(b, t, f) for b in info.blocks for t in TARGETS for f in "AB"}
    missing, extra = sorted(expected - tensors.keys()), sorted(tensors.keys() - expected)
    if missing or extra:
        raise ExpertFileError(path, f"tensors do not match the metadata: missing {missing[:4]}"
                              f"{'…' if len(missing) > 4 else ''}, unexpected {extra[:4]}{'…' if len(extra) > 4 else ''}",
                              "The file is damaged or was edited; re-export it with training/")
    dim, rank = info.base.dim, info.rank
    lora = {}
    for b in info.blocks:
        for t in TARGETS:
            down, up = tensors[tensor_key(b, t, "A")], tensors[tensor_key(b, t, "B")]
            if tuple(down.shape) != (rank, dim) or tuple(up.shape) != (dim, rank):
                raise ExpertFileError(path, f"block {b} '{t}' has LoRA shapes {tuple(down.shape)}/{tuple(up.shape)}, "
                                      f"expected ({rank}, {dim})/({dim}, {rank})", "Re-export the expert with training/")
            if not (torch.isfinite(down).all() and torch.isfinite(up).all()):
                raise ExpertFileError(path, f"block {b} '{t}' contains NaN or Inf",
                                      "Training diverged; use an earlier checkpoint or retrain")
            lora[(b, t)] = (down.float(), up.float())
    return lora
