"""Model files loaded as ComfyUI's loader nodes load them (VAELoader, UNETLoader), for training."""

from __future__ import annotations

from pathlib import Path


def load_vae(path: str | Path):
    """A VAE exactly as ``VAELoader`` builds it (the Wan 2.1 width is read from the file on v0.33+)."""
    import comfy.sd
    import comfy.utils

    sd, metadata = comfy.utils.load_torch_file(str(path), return_metadata=True)
    vae = comfy.sd.VAE(sd=sd, metadata=metadata)
    vae.throw_exception_if_invalid()
    return vae


def load_trainable_model(path: str | Path, shift: float, dtype=None):
    """A diffusion model as ``UNETLoader`` → ``ModelSamplingSD3(shift)`` gives it, every weight trainable
    (``dtype``: the weights' dtype; None lets ComfyUI pick, which is bf16 on most GPUs)."""
    from .branch_model import load_base_model, with_shift

    model = with_shift(load_base_model(str(path), dtype), shift)
    model.model.diffusion_model.requires_grad_(True)
    return model
