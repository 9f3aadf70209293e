"""Write a copy of a Casper / Wan 2.1 file that ComfyUI's stock loaders read, without changing any value.

    python -m omnimatte_run.convert_casper transformer.safetensors casper_1.3b.safetensors   # strip a key prefix
    python -m omnimatte_run.convert_casper Wan2.1-Fun-14B-InP/ wan2.1_fun_14b_inp.safetensors  # join shards
    python -m omnimatte_run.convert_casper casper_lora.safetensors casper_lora_comfy.safetensors

A transformer saved under ``transformer.``, ``module.``, ``state_dict.`` (or any other prefix before
``patch_embedding.weight``) gets bare Wan 2.1 keys; a diffusers-style sharded folder (or its
``*.index.json``) becomes one file; a VideoX-Fun LoRA that lacks the key ComfyUI recognises
(``lora_unet__blocks_0_cross_attn_k``) gets ``lora_unet_`` names ComfyUI maps. The result is checked
as the runner checks it. Memory: the whole file is held once (the 14B base in bf16: about 33 GB).
Pickled checkpoints are refused, never unpickled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from omnimatte_core import model_files as mf


def input_files(source: Path) -> list[Path]:
    """One file, or every shard an index json (given, or in the folder given) lists."""
    if source.is_dir():
        indexes = sorted(source.glob("*.safetensors.index.json"))
        if not indexes:
            shards = sorted(source.glob("*.safetensors"))
            if not shards:
                raise mf.ModelFileError(f"{source}: no .safetensors file and no *.safetensors.index.json in this "
                                        "folder")
            return shards
        source = indexes[0]
    if source.name.endswith(".index.json"):
        weight_map = json.loads(source.read_text())["weight_map"]
        return [source.parent / name for name in sorted(set(weight_map.values()))]
    mf.read_shapes(source)  # refuses pickles and unreadable files with their own message
    return [source]


def converted_state(files: list[Path]) -> tuple[dict, dict, str]:
    """→ (state with loader-ready names, metadata of the first file, what was done)."""
    from safetensors import safe_open

    state, metadata = {}, {}
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            metadata = metadata or dict(f.metadata() or {})
            for key in f.keys():
                state[key] = f.get_tensor(key)
    prefix = mf.find_prefix({k: () for k in state})
    if prefix is not None:
        return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, metadata, \
            f"{len(files)} file(s), key prefix '{prefix}' removed"
    if all(k.startswith(mf.VIDEOX_FUN_PREFIX) for k in state):
        return {"lora_unet_" + k[len(mf.VIDEOX_FUN_PREFIX):]: v for k, v in state.items()}, metadata, \
            "VideoX-Fun LoRA names 'lora_unet__' → 'lora_unet_'"
    raise mf.ModelFileError(f"{files[0]}: neither a Wan 2.1 transformer nor a VideoX-Fun LoRA; nothing to convert")


def convert(source: Path, target: Path) -> str:
    from safetensors.torch import save_file

    if target.exists():
        raise mf.ModelFileError(f"{target} exists; give a new file name")
    state, metadata, done = converted_state(input_files(source))
    partial = target.with_name(target.name + ".partial")
    save_file(state, str(partial), metadata={**metadata, "converted_by": "easy-omnimatte convert_casper"})
    partial.rename(target)
    if mf.find_prefix({k: () for k in state}) is not None:
        info = mf.check_diffusion_model(target)
        done += f"; {info.describe()}"
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m omnimatte_run.convert_casper", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a .safetensors file, a folder of shards, or a *.index.json")
    parser.add_argument("target", type=Path, help="the .safetensors file to write")
    args = parser.parse_args(argv)
    try:
        done = convert(args.source, args.target)
    except mf.ModelFileError as err:
        print(f"convert_casper: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.target}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
