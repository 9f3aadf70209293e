"""Widen a trained toy VAE without changing what it decodes (``training.toy_vae --widen-from``).

A width-8 ``WanVAE`` trained for hours plateaus below the video goal (docs/toy_world.md); a wider
one trained from noise needs those hours again. Widening keeps the narrow net's work: every
channel dimension that grows by k keeps the old channels first (per group where a layer's output
is split afterwards: an up-sampling ``time_conv`` into 2 frames, ``to_qkv`` into q, k, v), the new
channels read the old ones through small random weights and are read by nothing (zero weights).
So the wide net starts as the narrow one, up to the tiny new activations inside the RMS norms,
and training grows the new channels from there.

Two constants of the architecture depend on the width and are compensated: ``RMS_norm`` scales by
√C (old gains × √(C_old / C_new)), and single-head attention divides q·k by √C (old q × √(C_new / C_old)).
"""

from __future__ import annotations

import math

import torch

NEW_READS_SCALE = 1e-2  # new channels' weights on existing inputs, relative to a fan-in init
GROUPED_OUTPUTS = ("time_conv", "to_qkv")  # layers whose output channels are split into groups


def output_groups(name: str, narrow: dict[str, torch.Tensor]) -> int:
    """How many groups a parameter's first dimension holds: 2 for an up-sampling time conv
    ([2·C, C]), 3 for ``to_qkv`` ([3·C, C]), 1 for everything else."""
    layer, _, _ = name.rpartition(".")
    if layer.rpartition(".")[2] not in GROUPED_OUTPUTS:
        return 1
    weight = narrow[f"{layer}.weight"]
    return weight.shape[0] // weight.shape[1]


def old_positions(narrow_size: int, wide_size: int, groups: int) -> torch.Tensor:
    """Where the narrow net's channels sit in the wide dimension: first in each group."""
    old_per_group, wide_per_group = narrow_size // groups, wide_size // groups
    return torch.cat([g * wide_per_group + torch.arange(old_per_group) for g in range(groups)])


def widened(name: str, narrow: torch.Tensor, wide_shape: torch.Size, groups: int,
            gen: torch.Generator) -> torch.Tensor:
    """The wide tensor for one parameter: the narrow values in place, new rows small, new reads 0."""
    if name.endswith("gamma"):
        wide = torch.ones(wide_shape)
        index = old_positions(narrow.shape[0], wide_shape[0], 1)
        wide[index] = narrow * math.sqrt(narrow.shape[0] / wide_shape[0])
        return wide
    if narrow.ndim == 1:  # a bias: new outputs start at 0
        wide = torch.zeros(wide_shape)
        wide[old_positions(narrow.shape[0], wide_shape[0], groups)] = narrow
        return wide
    fan_in = math.prod(wide_shape[1:])
    wide = torch.randn(wide_shape, generator=gen) * (NEW_READS_SCALE / math.sqrt(fan_in))
    rows = old_positions(narrow.shape[0], wide_shape[0], groups)
    cols = old_positions(narrow.shape[1], wide_shape[1], 1)
    new_cols = torch.ones(wide_shape[1], dtype=torch.bool)
    new_cols[cols] = False
    wide[:, new_cols] = 0.0  # nothing reads the new channels yet
    wide[rows[:, None], cols[None, :]] = narrow
    return wide


def scale_queries_(wide: dict[str, torch.Tensor], narrow: dict[str, torch.Tensor]) -> None:
    """Single-head attention divides q·k by √C: scale the old queries so the logits stay."""
    for name, weight in narrow.items():
        if not name.endswith("to_qkv.weight"):
            continue
        narrow_dim, wide_dim = weight.shape[1], wide[name].shape[1]
        factor = math.sqrt(wide_dim / narrow_dim)
        queries = torch.arange(narrow_dim)  # q is the first group; its old channels come first
        layer = name.rpartition(".")[0]
        wide[name][queries] *= factor
        wide[f"{layer}.bias"][queries] *= factor


def widen_state(narrow: dict[str, torch.Tensor], wide_shapes: dict[str, torch.Size],
                seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict for the wide net (``wide_shapes``) that decodes as ``narrow`` does."""
    if set(narrow) != set(wide_shapes):
        differ = sorted(set(wide_shapes) ^ set(narrow))
        raise ValueError(f"not the same architecture at another width: {len(differ)} tensors differ, e.g. {differ[:3]}")
    gen = torch.Generator().manual_seed(seed)
    wide = {}
    for name, tensor in narrow.items():
        shape = wide_shapes[name]
        if any(w % n for w, n in zip(shape, tensor.shape)) or len(shape) != tensor.ndim:
            raise ValueError(f"{name}: {tuple(tensor.shape)} does not widen to {tuple(shape)}")
        wide[name] = (tensor.float().clone() if tuple(shape) == tuple(tensor.shape)
                      else widened(name, tensor.float(), shape, output_groups(name, narrow), gen))
    scale_queries_(wide, narrow)
    return wide


def widen_into_(model: torch.nn.Module, path, seed: int = 0) -> None:
    """Load the narrow toy VAE at ``path`` into the wider ``model``."""
    from safetensors.torch import load_file

    narrow = {k: v.float() for k, v in load_file(str(path)).items()}  # an fp16 file widens in fp32
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(widen_state(narrow, shapes, seed))
    except ValueError as error:
        raise SystemExit(f"--widen-from {path}: {error}; give a toy VAE file no wider than --dim") from error
