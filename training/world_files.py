"""Where the toy world's files live in the pack, and how a build's outputs are placed there.

``SHIPPED`` is the one layout (stage → ComfyUI model folder and file name), shared by the build
(``training.toy_world``), the assembly of a world from chosen runs (``training.assemble_world``,
``training.ship_world``) and the evaluation (``omnimatte_eval.toy_eval``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .build_records import sha256
from .toy_data import FRAMES, HEIGHT, TOY_CONFIG, WIDTH
from .toy_demo_clips import demo_indices, write_demo_clip

PACK_DIR = Path(__file__).resolve().parents[1]
TOY_DIR = PACK_DIR / "toy_world"
SHIPPED = {  # stage → (ComfyUI model folder, shipped file name)
    "text": ("omnimatte_text_embeds", "easyomnimatte_toy_text.safetensors"),
    "vae": ("vae", "easyomnimatte_toy_vae.safetensors"),
    "remover": ("diffusion_models", "easyomnimatte_toy_remover.safetensors"),
    "effect": ("omnimatte", "easyomnimatte_toy_effect.safetensors"),
    "quality": ("omnimatte", "easyomnimatte_toy_quality.safetensors"),
}


def place_stage(stage: str, path: Path, dest: Path, remover: Path) -> dict:
    """Copy one stage's file into the toy-world folder ``dest`` under its shipped folder and name (an expert
    through ship_expert, checked against ``remover``) → its manifest entry's file, sha256 and bytes."""
    folder, name = SHIPPED[stage]
    target = dest / folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    if stage in ("effect", "quality"):
        ship_expert(path, target, remover)
    else:
        shutil.copyfile(path, target)
    return {"file": f"{folder}/{name}", "sha256": sha256(target), "bytes": target.stat().st_size}


def place_demo_clips(dest: Path, copy_from: Path | None = None) -> dict[str, dict]:
    """Write the demo clips into ``dest/demo`` → their manifest entries. ``copy_from`` (a toy world) copies
    its clips instead: they depend on the held-out stream only, so a rewrite would change only bytes."""
    entries = {}
    for name, index in demo_indices().items():
        target = dest / "demo" / f"{name}.safetensors"
        target.parent.mkdir(parents=True, exist_ok=True)
        if copy_from is not None:
            shutil.copyfile(copy_from / "demo" / target.name, target)
        else:
            write_demo_clip(index, target)
        entries[f"demo/{name}"] = {"file": f"demo/{name}.safetensors", "sha256": sha256(target),
                                   "bytes": target.stat().st_size, "held_out_index": index}
    return entries


def world_header(rebuild: str) -> dict:
    """The manifest's ``toy_world`` record: the clips' size and seed, and how to make the world again."""
    return {"height": HEIGHT, "width": WIDTH, "frames": FRAMES, "seed": TOY_CONFIG.seed, "rebuild": rebuild}


def ship_expert(path: Path, target: Path, remover: Path) -> None:
    """Copy an expert, naming its base as shipped (the same bytes: its recorded hash must match),
    so the sampler's base-file check knows the shipped remover."""
    from dataclasses import replace

    from omnimatte_core.expert_file import load_expert, save_expert

    expert = load_expert(path)
    if expert.info.base_model_hash and expert.info.base_model_hash != sha256(remover)[:16]:
        raise SystemExit(f"{path.name} was trained on another remover than {remover}; rebuild the experts")
    expert.info = replace(expert.info, base_model_name=SHIPPED["remover"][1])
    save_expert(expert, target)
