"""What a model file is, read from its safetensors header alone: a Wan 2.1 transformer, a LoRA, or neither.

Why: ComfyUI's loaders fail late (after minutes of loading, or mid-graph) and with messages that do
not say which file to fix. The runner reads headers only (no tensor data) and refuses, before
anything loads, a text-to-video model given as Casper, a LoRA given as the UNET, a prefixed or
sharded checkpoint ComfyUI cannot detect, and a LoRA made for another base (the 14B Casper LoRA on
the 1.3B model). Each refusal names the file and the fix.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

PATCH_KEY = "patch_embedding.weight"
COMFY_PREFIXES = ("", "model.diffusion_model.")  # what ComfyUI's UNETLoader strips or needs nothing for
CONVERT_COMMAND = "python -m omnimatte_run.convert_casper"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
SHARD_NAME = re.compile(r"-(\d{5})-of-(\d{5})\.safetensors$")
VIDEOX_FUN_PREFIX = "lora_unet__"
COMFY_WAN_FUN_MARKER = "lora_unet__blocks_0_cross_attn_k.lora_down.weight"  # the key ComfyUI's converter looks for
KNOWN_BASES = {1536: "Wan2.1-Fun-1.3B-InP (the 1.3B Casper)", 5120: "Wan2.1-Fun-14B-InP"}


class ModelFileError(ValueError):
    """A model file the run cannot use; the message names the file, the problem and the fix."""


@dataclass(frozen=True)
class WanFileInfo:
    """A Wan 2.1 transformer's signature, from tensor shapes alone."""

    prefix: str
    dim: int
    num_layers: int
    in_dim: int
    i2v: bool
    shapes: dict  # key without prefix → shape

    def describe(self) -> str:
        kind = "image-to-video/inpainting" if self.i2v else "text-to-video"
        return f"Wan 2.1 {kind}, dim {self.dim}, {self.num_layers} blocks, in_dim {self.in_dim}"


@dataclass(frozen=True)
class LoraFileInfo:
    modules: dict  # LoRA module name → (rank, out, in)
    naming: str  # "videox_fun" or "other"


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name → shape from the safetensors header (8-byte length + JSON); no tensor is read."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelFileError(f"{path}: a pickled checkpoint ({path.suffix}); this pack loads .safetensors only "
                             "(pickles can run code when loaded). Get the .safetensors release of this file, or "
                             "save its state dict with safetensors.torch.save_file where you trust it.")
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
    except (OSError, struct.error, ValueError) as err:
        raise ModelFileError(f"{path}: not a readable .safetensors file ({err}). Download it again; a cut-off "
                             "download has a header but not all of its data.") from err
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def find_prefix(shapes: dict) -> str | None:
    """The text before ``patch_embedding.weight`` (``""`` for bare keys), or None when there is none."""
    hits = [k[:-len(PATCH_KEY)] for k in shapes if k.endswith(PATCH_KEY) and not k.endswith("vace_" + PATCH_KEY)]
    return min(hits, key=len) if hits else None


def wan_info(shapes: dict, prefix: str) -> WanFileInfo:
    bare = {k[len(prefix):]: v for k, v in shapes.items() if k.startswith(prefix)}
    blocks = {int(m.group(1)) for k in bare if (m := re.match(r"blocks\.(\d+)\.", k))}
    patch = bare[PATCH_KEY]
    return WanFileInfo(prefix=prefix, dim=patch[0], num_layers=max(blocks) + 1 if blocks else 0, in_dim=patch[1],
                       i2v="img_emb.proj.0.bias" in bare, shapes=bare)


def lora_info(shapes: dict) -> LoraFileInfo | None:
    """LoRA modules (``.lora_down``/``.lora_up`` or ``.lora_A``/``.lora_B`` pairs), or None if it holds none."""
    modules = {}
    for key, shape in shapes.items():
        for down, up in ((".lora_down.weight", ".lora_up.weight"), (".lora_A.weight", ".lora_B.weight")):
            if key.endswith(down):
                name = key[:-len(down)]
                up_shape = shapes.get(name + up)
                modules[name] = (shape[0], up_shape[0] if up_shape else -1, shape[1],
                                 up_shape[1] if up_shape else -1)
    if not modules:
        return None
    naming = "videox_fun" if all(k.startswith(VIDEOX_FUN_PREFIX) for k in modules) else "other"
    return LoraFileInfo(modules=modules, naming=naming)


def check_diffusion_model(path: Path, role: str = "--unet") -> WanFileInfo:
    """The file is a whole Wan 2.1 inpainting transformer that ComfyUI's UNETLoader detects; else ModelFileError."""
    shapes = read_shapes(path)
    prefix = find_prefix(shapes)
    shard = SHARD_NAME.search(Path(path).name)
    partial = prefix is None and any(re.search(r"blocks\.\d+\.self_attn\.q\.weight$", k) for k in shapes)
    if shard or partial or (prefix is not None and prefix + "head.head.weight" not in shapes):
        parts = f"one of {int(shard.group(2))} shards" if shard else "part"
        raise ModelFileError(f"{path}: {parts} of a split checkpoint, not a whole model. UNETLoader reads one file: "
                             f"join the shards with `{CONVERT_COMMAND} FOLDER_OR_INDEX.json OUT.safetensors`.")
    if prefix is None:
        raise ModelFileError(_not_a_transformer(path, shapes, role))
    info = wan_info(shapes, prefix)
    if prefix not in COMFY_PREFIXES:
        raise ModelFileError(f"{path}: its keys start with '{prefix}' (e.g. {prefix}{PATCH_KEY}), which ComfyUI's "
                             f"UNETLoader cannot detect. Write a copy with bare keys: `{CONVERT_COMMAND} {path} "
                             f"OUT.safetensors`, and load that.")
    if not info.i2v or info.in_dim != 36:
        raise ModelFileError(f"{path}: a {info.describe()} model. Casper is an inpainting model (in_dim 36: 16 "
                             "noise + 4 mask + 16 video channels, with CLIP image embeddings). Use the Casper file "
                             "(the 1.3B fine-tune) or Wan2.1-Fun-14B-InP with the Casper LoRA (README 'Model files').")
    return info


def _not_a_transformer(path: Path, shapes: dict, role: str) -> str:
    lora = lora_info(shapes)
    if lora is not None:
        dim = _lora_base_dim(lora)
        base = KNOWN_BASES.get(dim, f"the dim-{dim} base it was trained on")
        return (f"{path}: a LoRA ({len(lora.modules)} modules), not a diffusion model, given as {role}. Pass it as "
                f"--lora {Path(path).name} and give --unet the base model it was trained on ({base}).")
    if any(k.startswith("blocks.") and ".self_attn.q.lora_A" in k for k in shapes):
        return f"{path}: an EasyOmnimatte expert file, given as {role}. It goes in models/omnimatte/ (--effect-expert)."
    return (f"{path}: not a Wan 2.1 transformer (no tensor named *{PATCH_KEY} among its {len(shapes)}). Give "
            f"{role} the Casper transformer (README 'Model files').")


def _lora_base_dim(lora: LoraFileInfo) -> int:
    """The base width a LoRA was made for: the in-features of a self-attention q (or the most common in-features)."""
    for name, (_, _, in_f, _) in lora.modules.items():
        if re.search(r"self_attn[._]q$", name):
            return in_f
    ins = [m[2] for m in lora.modules.values()]
    return max(set(ins), key=ins.count)


def check_lora(path: Path, base: WanFileInfo, base_path: Path) -> LoraFileInfo:
    """The file is a LoRA whose every module maps to a Linear of ``base`` with matching shapes; else ModelFileError."""
    shapes = read_shapes(path)
    lora = lora_info(shapes)
    if lora is None:
        what = "a Wan transformer" if find_prefix(shapes) is not None else "not a LoRA"
        raise ModelFileError(f"{path}: {what} (no .lora_down/.lora_up tensors), given as --lora. A diffusion "
                             "model goes in --unet; --lora takes the Casper LoRA for Wan2.1-Fun-14B-InP.")
    dim = _lora_base_dim(lora)
    if dim != base.dim:
        raise ModelFileError(f"{path}: a LoRA for a dim-{dim} model ({KNOWN_BASES.get(dim, 'another base')}), but "
                             f"--unet {Path(base_path).name} is dim {base.dim} "
                             f"({KNOWN_BASES.get(base.dim, 'another model')}). Give --unet the base it was trained "
                             "on, or drop --lora (the 1.3B Casper is a full fine-tune and needs no LoRA).")
    bad_rank = [n for n, (r_down, _, _, r_up) in lora.modules.items() if r_down != r_up]
    if bad_rank:
        raise ModelFileError(f"{path}: {len(bad_rank)} LoRA module(s) whose down and up ranks differ (e.g. "
                             f"{bad_rank[0]}: {lora.modules[bad_rank[0]][0]} vs {lora.modules[bad_rank[0]][3]}); "
                             "the file is damaged or not a LoRA. Download it again.")
    if lora.naming == "videox_fun":
        _check_videox_fun_names(path, lora, base, shapes)
    return lora


def _check_videox_fun_names(path: Path, lora: LoraFileInfo, base: WanFileInfo, shapes: dict) -> None:
    """Every ``lora_unet__<module>`` names a Linear of the base with (out, in) equal to (up rows, down columns)."""
    linears = {k[:-len(".weight")].replace(".", "_"): v for k, v in base.shapes.items()
               if k.endswith(".weight") and len(v) == 2}
    unmapped = [n for n in lora.modules if n[len(VIDEOX_FUN_PREFIX):] not in linears]
    if unmapped:
        raise ModelFileError(f"{path}: {len(unmapped)} of {len(lora.modules)} LoRA modules name no layer of "
                             f"{base.describe()} (e.g. {unmapped[0]}); ComfyUI would skip them ('lora key not "
                             "loaded'). The keys were renamed or the LoRA is for another model: use the file as "
                             "published.")
    wrong = [n for n, (_, out_f, in_f, _) in lora.modules.items()
             if linears[n[len(VIDEOX_FUN_PREFIX):]] != (out_f, in_f)]
    if wrong:
        raise ModelFileError(f"{path}: {len(wrong)} LoRA modules do not fit the base's layer shapes (e.g. {wrong[0]}: "
                             f"{lora.modules[wrong[0]][1:3]} vs {linears[wrong[0][len(VIDEOX_FUN_PREFIX):]]}). "
                             "Give --unet the base model this LoRA was trained on.")
    if COMFY_WAN_FUN_MARKER not in shapes:
        raise ModelFileError(f"{path}: VideoX-Fun LoRA names without {COMFY_WAN_FUN_MARKER}, which is how ComfyUI "
                             f"recognises them; it would skip every key. Write a copy ComfyUI maps: "
                             f"`{CONVERT_COMMAND} {path} OUT.safetensors`.")
