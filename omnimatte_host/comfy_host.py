"""Find the ComfyUI host and import it as a library (CPU when no GPU, explicit threads).

Used by the runner, the builders, the tests, benchmarks and training. ComfyUI's folder goes first on
``sys.path`` (its ``nodes.py`` must win over this pack's ``nodes/``); the pack folder goes
last so the pack's own packages (``omnimatte_run``, ``training`` …) stay importable.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parents[1]
THREADS = int(os.environ.get("OMNIMATTE_TEST_THREADS", "1"))

NO_HOST_MESSAGE = (
    "EasyOmnimatte: no ComfyUI found. Point COMFYUI_PATH at a ComfyUI checkout "
    "(the folder holding main.py), e.g. `export COMFYUI_PATH=/path/to/ComfyUI`, or install "
    "this pack into ComfyUI/custom_nodes/, or put a checkout at ~/ComfyUI (scripts/test.sh and "
    "scripts/run.sh clone a pinned one themselves when none is found).")


PINNED_COPY = Path(os.environ.get("OMNIMATTE_COMFYUI_CACHE", Path.home() / ".cache" / "easy-omnimatte" / "comfyui")) \
    / os.environ.get("OMNIMATTE_COMFYUI_TAG", "v0.33.0")  # where scripts/env.sh clones one on a fresh machine


def find_comfyui() -> Path | None:
    """$COMFYUI_PATH, else the ComfyUI this pack sits in, else ~/ComfyUI, else the pinned copy."""
    if os.environ.get("COMFYUI_PATH"):
        candidates = [Path(os.environ["COMFYUI_PATH"])]
    else:
        candidates = []
        if PACK_DIR.parent.name == "custom_nodes":
            candidates.append(PACK_DIR.parent.parent)
        candidates += [Path.home() / "ComfyUI", PINNED_COPY]
    for candidate in candidates:
        if (candidate / "main.py").is_file() and (candidate / "comfy").is_dir():
            return candidate.resolve()
    return None


def import_comfy(comfy_path: Path | None = None, threads: int | None = THREADS) -> Path:
    """Make ``comfy`` importable, on CPU when no CUDA device is present (DESIGN §2)."""
    import torch

    comfy_path = comfy_path or find_comfyui()
    if comfy_path is None:
        raise SystemExit(NO_HOST_MESSAGE)
    if threads:
        torch.set_num_threads(threads)
    for p in (str(PACK_DIR), ""):
        while p in sys.path[:1]:  # a pack-root entry first would shadow ComfyUI's nodes.py
            sys.path.append(sys.path.pop(0))
    if str(comfy_path) not in sys.path:
        sys.path.insert(0, str(comfy_path))
    import comfy.cli_args

    if not torch.cuda.is_available():
        comfy.cli_args.args.cpu = True
    if os.environ.get("OMNIMATTE_FP32_VAE") == "1":  # toy-world builds on a GPU: latents as the CPU makes them
        comfy.cli_args.args.fp32_vae = True
    import comfy.model_management  # noqa: F401  (device selection happens here)
    import utils.extra_config  # noqa: F401  (main.py imports it before executing graphs)
    return comfy_path


def comfyui_version(comfy_path: Path) -> str:
    import re

    file = comfy_path / "comfyui_version.py"
    match = re.search(r'__version__\s*=\s*"([^"]+)"', file.read_text()) if file.is_file() else None
    return match.group(1) if match else "unknown"


def parse_version(text: str) -> tuple[int, ...] | None:
    """``"0.3.64"`` → ``(0, 3, 64)``; None when the text is not a dotted version."""
    import re

    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
    return tuple(int(p) for p in match.group(1).split(".")) if match else None


def required_comfyui() -> str:
    """The oldest ComfyUI the pack supports: pyproject.toml's ``requires-comfyui`` (``>=0.33.0`` → ``0.33.0``)."""
    import re  # read as text: tomllib is Python 3.11+, the pack supports 3.10

    match = re.search(r'^requires-comfyui\s*=\s*">=\s*([\d.]+)"', (PACK_DIR / "pyproject.toml").read_text(), re.M)
    if match is None:
        raise ValueError("pyproject.toml has no requires-comfyui = \">=X.Y.Z\" line")
    return match.group(1)


def version_problem(comfy_path: Path) -> str | None:
    """Why the host at ``comfy_path`` is too old for the pack (the runner and the tests stop on it), or None
    when it is new enough or its version cannot be read."""
    found, needed = comfyui_version(comfy_path), required_comfyui()
    version = parse_version(found)
    if version is None or version >= parse_version(needed):
        return None
    return (f"ComfyUI {found} at {comfy_path} is older than EasyOmnimatte supports (>= {needed}, "
            "requires-comfyui in pyproject.toml; the embedded toy world and the SAM3/VOID workflows need it). "
            f"Fix: update that ComfyUI (git pull there, or ComfyUI-Manager's 'Update ComfyUI'), or point "
            f"COMFYUI_PATH at ComfyUI {needed} or newer")


def prompt_executor(server):
    """``execution.PromptExecutor`` built as main.py builds it, on v0.33 (cache_args) and v0.3.64 (cache_size)."""
    import inspect

    import execution

    if "cache_args" in inspect.signature(execution.PromptExecutor.__init__).parameters:
        cache = {"cache_args": {"lru": 0, "ram": 0, "ram_inactive": 0}}
    else:
        cache = {"cache_size": 0}
    return execution.PromptExecutor(server, cache_type=execution.CacheType.CLASSIC, **cache)


def load_nodes_with_pack() -> None:
    """Core's extra nodes and this pack, loaded as ComfyUI's startup loads them."""
    import asyncio

    import nodes

    asyncio.run(nodes.init_builtin_extra_nodes())
    if not asyncio.run(nodes.load_custom_node(str(PACK_DIR))):
        raise RuntimeError(f"ComfyUI failed to load the pack at {PACK_DIR}; see the log above")
