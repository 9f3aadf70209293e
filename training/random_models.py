"""Seeded random Wan 2.1 models (tiny for tests, any size for benchmarks) written as ``.safetensors`` and loaded by ComfyUI's loaders.

ComfyUI's layers skip weight init, so every tensor is filled here (seeded). Detection
reads dims from the state dict: ``num_heads = dim // 128`` (dim must be a multiple of
128), ``img_emb.*`` present → I2V, ``patch_embedding.weight.shape[1]`` → in_dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

CACHE_DIR = Path.home() / ".cache" / "easy-omnimatte" / "test-models"
TEXT_DIM = 4096  # umt5-xxl width; Wan detection fixes it
CLIP_VISION_DIM = 1280  # CLIP-H penultimate width
CLIP_VISION_TOKENS = 257


@dataclass(frozen=True)
class TinyWanSpec:
    i2v: bool = True
    dim: int = 128
    ffn_dim: int = 256
    num_layers: int = 4
    in_dim: int = 36
    out_dim: int = 16


def _fill_(tensor: torch.Tensor, name: str, gen: torch.Generator) -> None:
    """Initialise like a trained model's scale: unit norms, fan-in linears, small modulation."""
    if "modulation" in name:
        tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.1)
    elif tensor.ndim == 1 and name.endswith("weight"):  # norm gains
        tensor.copy_(1.0 + 0.05 * torch.randn(tensor.shape, generator=gen))
    elif tensor.ndim == 1:  # biases
        tensor.copy_(0.02 * torch.randn(tensor.shape, generator=gen))
    else:
        fan_in = math.prod(tensor.shape[1:])
        tensor.copy_(torch.randn(tensor.shape, generator=gen) / math.sqrt(fan_in))


def wan_state_dict(spec: TinyWanSpec, seed: int) -> dict[str, torch.Tensor]:
    import comfy.ldm.wan.model
    import comfy.ops

    model = comfy.ldm.wan.model.WanModel(
        model_type="i2v" if spec.i2v else "t2v", in_dim=spec.in_dim, dim=spec.dim,
        ffn_dim=spec.ffn_dim, text_dim=TEXT_DIM, out_dim=spec.out_dim,
        num_heads=spec.dim // 128, num_layers=spec.num_layers,
        operations=comfy.ops.disable_weight_init, dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for name in sorted(state):
        _fill_(state[name], name, gen)
    return {k: v.contiguous() for k, v in state.items()}


def write_wan(path: Path, spec: TinyWanSpec, seed: int) -> Path:
    save_file(wan_state_dict(spec, seed), str(path))
    return path


def load_wan(path: Path):
    """A MODEL (ModelPatcher) exactly as UNETLoader would build it."""
    import comfy.sd

    return comfy.sd.load_diffusion_model(str(path))


def vae_state_dict(seed: int, dim: int = 8) -> dict[str, torch.Tensor]:
    import comfy.ldm.wan.vae

    model = comfy.ldm.wan.vae.WanVAE(dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                                     attn_scales=[], temperal_downsample=[False, True, True])
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for name in sorted(state):
        if name.endswith("gamma"):
            state[name].copy_(1.0 + 0.05 * torch.randn(state[name].shape, generator=gen))
        else:
            _fill_(state[name], name, gen)
    return {k: v.contiguous() for k, v in state.items()}


def host_vae_dim() -> int:
    """Width of the tiny VAE the host can load: v0.33 reads it from the file, v0.3.64 fixes 96."""
    import inspect

    import comfy.sd

    return 8 if "decoder.head.0.gamma" in inspect.getsource(comfy.sd.VAE.__init__) else 96


def write_vae(path: Path, seed: int) -> Path:
    """A seeded Wan 2.1 VAE; the full-width one (old hosts) is made once and cached outside the checkout."""
    dim = host_vae_dim()
    if dim == 8:
        save_file(vae_state_dict(seed, dim), str(path))
        return path
    cached = CACHE_DIR / f"wan21_vae_random_dim{dim}_seed{seed}.safetensors"
    if not cached.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        save_file(vae_state_dict(seed, dim), str(cached) + ".part")
        Path(str(cached) + ".part").rename(cached)
    path.symlink_to(cached)
    return path


def load_vae(path: Path):
    """A VAE exactly as VAELoader would build it."""
    import comfy.sd
    import comfy.utils

    sd, metadata = comfy.utils.load_torch_file(str(path), return_metadata=True)
    vae = comfy.sd.VAE(sd=sd, metadata=metadata)
    vae.throw_exception_if_invalid()
    return vae


def text_conditioning(seed: int, tokens: int = 16) -> list:
    """Shaped like CLIPTextEncode's umt5 output: [[tokens [1, L, 4096], {"pooled_output": None}]]."""
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, tokens, TEXT_DIM, generator=gen), {"pooled_output": None}]]


def clip_vision_output(seed: int):
    """Shaped like CLIPVisionEncode's CLIP-H output (the Wan I2V model reads the penultimate states)."""
    import comfy.clip_vision

    gen = torch.Generator().manual_seed(seed)
    out = comfy.clip_vision.Output()
    out.penultimate_hidden_states = torch.randn(1, CLIP_VISION_TOKENS, CLIP_VISION_DIM, generator=gen)
    out.last_hidden_state = out.penultimate_hidden_states
    out.image_embeds = torch.randn(1, 1024, generator=gen)
    return out


def clip_vision_h_file(seed: int = 0) -> Path:
    """A seeded random CLIP-H vision file (≈1.3 GB fp16) that ``CLIPVisionLoader`` detects as clip_vision_h.

    Made once and cached outside the checkout (``CACHE_DIR/clip_vision``); tests point a models
    folder at that directory. Only the shapes matter: Wan's ``img_emb`` reads 257×1280 features.
    """
    cached = CACHE_DIR / "clip_vision" / f"random_clip_vision_h_seed{seed}.safetensors"
    if cached.exists():
        return cached
    import os

    import comfy.clip_vision

    config = os.path.join(os.path.dirname(comfy.clip_vision.__file__), "clip_vision_config_h.json")
    shapes = {k: v.shape for k, v in comfy.clip_vision.ClipVisionModel(config).model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if "norm" in key or "layrnorm" in key:
            state[key] = (torch.ones(shape) if key.endswith("weight") else torch.zeros(shape)).half()
        elif key.endswith("bias"):
            state[key] = torch.zeros(shape, dtype=torch.float16)
        else:
            state[key] = (torch.randn(shape, generator=gen) * 0.02).half()
    cached.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(cached) + ".part")
    Path(str(cached) + ".part").rename(cached)
    return cached
