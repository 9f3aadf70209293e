"""Files in the exact layouts Gen-Omnimatte publishes its Casper weights in, filled with random values.

Written from the published architecture (VideoX-Fun's ``WanTransformer3DModel`` and ``LoRANetwork``
as isl-org/gen-omnimatte-public ships them), never from ComfyUI's module names, so the tests show
that ComfyUI's stock loaders map the published names:

- the 1.3B Casper: a full fine-tune of Wan2.1-Fun-1.3B-InP saved with ``save_pretrained`` (bare Wan
  2.1 keys, bf16, 30 blocks);
- the 14B Casper: a LoRA on Wan2.1-Fun-14B-InP with VideoX-Fun names
  (``lora_unet__blocks_0_self_attn_q.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha``; every
  Linear of the transformer; rank 128, alpha 64; bf16).

``shapes=True`` helpers give names and shapes only (meta tensors), so the full 30 / 40 block files
can be checked without allocating them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import save_file

CLIP_DIM = 1280  # open-clip ViT-H penultimate width, MLPProj(1280, dim)


@dataclass(frozen=True)
class WanLayout:
    """One published Wan 2.1 transformer configuration (VideoX-Fun's config names)."""

    dim: int
    ffn_dim: int
    num_layers: int
    in_dim: int = 36
    i2v: bool = True
    out_dim: int = 16
    freq_dim: int = 256
    text_dim: int = 4096

    def reduced(self, num_layers: int, dim: int | None = None, ffn_dim: int | None = None) -> "WanLayout":
        """Fewer blocks (and, for CI, optionally narrower ones; dim stays a multiple of 128 for the heads)."""
        return replace(self, num_layers=num_layers, dim=dim or self.dim, ffn_dim=ffn_dim or self.ffn_dim)


CASPER_1_3B = WanLayout(dim=1536, ffn_dim=8960, num_layers=30)  # Wan2.1-Fun-1.3B-InP
FUN_14B = WanLayout(dim=5120, ffn_dim=13824, num_layers=40)  # Wan2.1-Fun-14B-InP
T2V_1_3B = replace(CASPER_1_3B, in_dim=16, i2v=False)  # Wan2.1-T2V-1.3B: the wrong file a user may pick


def _linear(name: str, out_features: int, in_features: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.weight": (out_features, in_features), f"{name}.bias": (out_features,)}


def linear_modules(layout: WanLayout) -> dict[str, tuple[int, int]]:
    """Every ``nn.Linear`` of the transformer: module name → (out, in). These are what VideoX-Fun's LoRA wraps."""
    d = layout.dim
    mods = {"text_embedding.0": (d, layout.text_dim), "text_embedding.2": (d, d),
            "time_embedding.0": (d, layout.freq_dim), "time_embedding.2": (d, d),
            "time_projection.1": (6 * d, d), "head.head": (4 * layout.out_dim, d)}
    if layout.i2v:
        mods.update({"img_emb.proj.1": (CLIP_DIM, CLIP_DIM), "img_emb.proj.3": (d, CLIP_DIM)})
    cross = ("q", "k", "v", "o", "k_img", "v_img") if layout.i2v else ("q", "k", "v", "o")
    for i in range(layout.num_layers):
        mods.update({f"blocks.{i}.self_attn.{p}": (d, d) for p in ("q", "k", "v", "o")})
        mods.update({f"blocks.{i}.cross_attn.{p}": (d, d) for p in cross})
        mods.update({f"blocks.{i}.ffn.0": (layout.ffn_dim, d), f"blocks.{i}.ffn.2": (d, layout.ffn_dim)})
    return mods


def wan_shapes(layout: WanLayout) -> dict[str, tuple[int, ...]]:
    """Every tensor ``save_pretrained`` writes for this layout: key → shape (no ``freqs``: not a buffer)."""
    d = layout.dim
    shapes: dict[str, tuple[int, ...]] = {}
    for name, (out_f, in_f) in linear_modules(layout).items():
        shapes.update(_linear(name, out_f, in_f))
    shapes.update({"patch_embedding.weight": (d, layout.in_dim, 1, 2, 2), "patch_embedding.bias": (d,),
                   "head.modulation": (1, 2, d)})
    if layout.i2v:
        shapes.update({"img_emb.proj.0.weight": (CLIP_DIM,), "img_emb.proj.0.bias": (CLIP_DIM,),
                       "img_emb.proj.4.weight": (d,), "img_emb.proj.4.bias": (d,)})
    norms = ("norm_q", "norm_k", "norm_k_img") if layout.i2v else ("norm_q", "norm_k")
    for i in range(layout.num_layers):
        block = f"blocks.{i}"
        shapes.update({f"{block}.modulation": (1, 6, d), f"{block}.norm3.weight": (d,), f"{block}.norm3.bias": (d,),
                       f"{block}.self_attn.norm_q.weight": (d,), f"{block}.self_attn.norm_k.weight": (d,)})
        shapes.update({f"{block}.cross_attn.{n}.weight": (d,) for n in norms})
    return shapes


def lora_name(module: str) -> str:
    """VideoX-Fun's name: ``"lora_unet" + "." + "" + "." + module`` with dots → underscores (hence ``__``)."""
    return ("lora_unet" + "." + "" + "." + module).replace(".", "_")


def lora_shapes(layout: WanLayout, rank: int = 128) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for module, (out_f, in_f) in linear_modules(layout).items():
        name = lora_name(module)
        shapes.update({f"{name}.lora_down.weight": (rank, in_f), f"{name}.lora_up.weight": (out_f, rank),
                       f"{name}.alpha": ()})
    return shapes


def _random(shape: tuple[int, ...], name: str, gen: torch.Generator) -> torch.Tensor:
    """Trained-model scales: unit norm gains, fan-in linears, small modulation and biases."""
    if "modulation" in name:
        return torch.randn(shape, generator=gen) * 0.1
    if len(shape) == 1 and name.endswith("weight"):
        return 1.0 + 0.05 * torch.randn(shape, generator=gen)
    if len(shape) == 1:
        return 0.02 * torch.randn(shape, generator=gen)
    return torch.randn(shape, generator=gen) / math.sqrt(math.prod(shape[1:]))


def wan_state(layout: WanLayout, seed: int = 0, dtype: torch.dtype = torch.bfloat16, prefix: str = "",
              shapes_only: bool = False) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in sorted(wan_shapes(layout).items()):
        state[prefix + key] = (torch.empty(shape, dtype=dtype, device="meta") if shapes_only
                               else _random(shape, key, gen).to(dtype))
    return state


def lora_state(layout: WanLayout, rank: int = 128, alpha: float = 64.0, seed: int = 0,
               dtype: torch.dtype = torch.bfloat16, shapes_only: bool = False) -> dict[str, torch.Tensor]:
    """``LoRANetwork.save_weights``: every tensor in ``dtype`` (the alpha buffer too)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in sorted(lora_shapes(layout, rank).items()):
        if key.endswith(".alpha"):
            state[key] = torch.tensor(float(alpha), dtype=dtype)  # a real scalar: loaders read .item()
        elif shapes_only:
            state[key] = torch.empty(shape, dtype=dtype, device="meta")
        else:  # std so that (alpha/rank)·up·down is a visible but small change of a fan-in weight
            state[key] = (torch.randn(shape, generator=gen) / math.sqrt(shape[1])).to(dtype)
    return state


LORA_METADATA = {"sshs_model_hash": "0" * 64, "sshs_legacy_hash": "0" * 8}  # what save_weights adds


def write_wan(path: Path, layout: WanLayout, seed: int = 0, prefix: str = "", dtype=torch.bfloat16) -> Path:
    save_file(wan_state(layout, seed, dtype, prefix), str(path))
    return path


def write_lora(path: Path, layout: WanLayout, rank: int = 128, alpha: float = 64.0, seed: int = 0) -> Path:
    save_file(lora_state(layout, rank, alpha, seed), str(path), metadata=LORA_METADATA)
    return path


def write_sharded(folder: Path, state: dict[str, torch.Tensor], shards: int = 2) -> list[Path]:
    """diffusers' sharded layout: ``diffusion_pytorch_model-0000i-of-0000n.safetensors`` + the index json."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = sorted(state)
    paths, weight_map = [], {}
    for i in range(shards):
        name = f"diffusion_pytorch_model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: state[k] for k in keys[i::shards]}
        save_file(part, str(folder / name))
        weight_map.update({k: name for k in part})
        paths.append(folder / name)
    index = {"metadata": {"total_size": sum(t.numel() * t.element_size() for t in state.values())},
             "weight_map": weight_map}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    return paths


def merged_reference(base: dict[str, torch.Tensor], lora: dict[str, torch.Tensor],
                     multiplier: float = 1.0) -> dict[str, torch.Tensor]:
    """The published ``merge_lora`` rule, in fp32: W += multiplier · (alpha / rank) · up @ down."""
    merged = {k: v.float().clone() for k, v in base.items()}
    by_lora_name = {k[:-len(".weight")].replace(".", "_"): k for k in merged if k.endswith(".weight")}
    for module in {k.rsplit(".", 2)[0] for k in lora if k.endswith(".lora_down.weight")}:
        up = lora[f"{module}.lora_up.weight"].float()
        down = lora[f"{module}.lora_down.weight"].float()
        scale = lora[f"{module}.alpha"].item() / up.shape[1]
        merged[by_lora_name[module[len("lora_unet__"):]]] += multiplier * scale * (up @ down)
    return merged
