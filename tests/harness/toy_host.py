"""The one rule for toy-world tests: skip only on a ComfyUI known too old for the toy world, fail otherwise.

The toy world's Wan VAE is 8 channels wide; ComfyUI reads that width from the file from v0.33 on
(v0.3.64 fixes it at 96). A skip decided by anything but the host's version could turn every quality
test into a green skip after a host refactor, so any other host must load the toy VAE or fail loudly.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

TOY_WORLD_MIN_VERSION = (0, 33)
TOY_WORLD_MARK = "toy_world"
needs_toy_world = pytest.mark.toy_world  # conftest.py's setup hook calls require_toy_world for these tests


def too_old_reason(version_text: str) -> str | None:
    """Why this host version cannot run the toy world, or None when it should (or is unknown)."""
    from omnimatte_host.comfy_host import parse_version

    version = parse_version(version_text)
    if version is None or version >= TOY_WORLD_MIN_VERSION:
        return None
    return (f"ComfyUI {version_text} fixes the Wan VAE width at 96; the toy world needs ComfyUI "
            f">= {'.'.join(map(str, TOY_WORLD_MIN_VERSION))} (its 8-wide VAE width is read from the file)")


@functools.lru_cache(maxsize=1)
def toy_vae_load_error() -> str | None:
    """Build an 8-wide Wan VAE through ComfyUI's own VAE class; a message saying what broke, or None."""
    import comfy.sd

    from training import random_models as rm

    state = rm.vae_state_dict(seed=0, dim=8)
    try:
        vae = comfy.sd.VAE(sd=dict(state))
        vae.throw_exception_if_invalid()
        loaded = vae.first_stage_model.state_dict()
    except Exception as exc:  # reported below as a test failure with the host's own error
        return f"ComfyUI could not build the toy world's 8-wide Wan VAE: {type(exc).__name__}: {exc}"
    wrong = [k for k, v in state.items() if k not in loaded or loaded[k].shape != v.shape]
    if wrong:
        return (f"ComfyUI built the toy world's Wan VAE with other shapes than the file's ({len(wrong)} tensors, "
                f"e.g. {wrong[0]}): the host no longer reads the VAE width from the file")
    return None


def require_toy_world(comfy_path: Path) -> None:
    """Skip on a host version known too old; on any other host fail, naming the fix, if the toy VAE won't load."""
    from omnimatte_host.comfy_host import comfyui_version

    version = comfyui_version(comfy_path)
    reason = too_old_reason(version)
    if reason is not None:
        pytest.skip(reason)
    error = toy_vae_load_error()
    if error is not None:
        pytest.fail(f"toy world on ComfyUI {version} at {comfy_path}: {error}. Fix: the toy-world loading in "
                    "training/random_models.py and training/loaders.py must follow the host's VAE loader "
                    f"(or, if this host is too old, raise TOY_WORLD_MIN_VERSION in {Path(__file__).name})",
                    pytrace=False)
