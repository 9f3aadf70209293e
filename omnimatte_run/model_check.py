"""The runner's model files: ``--lora NAME[:STRENGTH]`` wired after the UNETLoader, and a header check of
the transformer and every LoRA before anything loads (``omnimatte_core.model_files``).

A wrong file (a text-to-video model, a LoRA given as the UNET, the 14B Casper LoRA on the 1.3B model,
a prefixed or sharded checkpoint) is refused naming the file and the fix, instead of failing inside
ComfyUI minutes later or, for a LoRA, loading with a "lora key not loaded" warning per key.
"""

from __future__ import annotations

import argparse
import logging

from omnimatte_core import model_files as mf

LORA_NODE = "LoraLoaderModelOnly"


def lora_arg(text: str) -> tuple[str, float]:
    """``casper_lora.safetensors:0.8`` → (name, 0.8); no ``:STRENGTH`` → strength 1.0 (the published merge)."""
    name, sep, strength = text.rpartition(":")
    if sep:
        try:
            return name, float(strength)
        except ValueError:
            pass
    if not text:
        raise argparse.ArgumentTypeError("--lora needs a file name from models/loras/")
    return text, 1.0


def add_loras(prompt: dict, loras: list[tuple[str, float]]) -> dict:
    """Chain one LoraLoaderModelOnly per LoRA after every UNETLoader; its consumers take the last one's MODEL.

    The given list replaces the LoRA loaders a workflow already has there (the 14B workflows' Casper LoRA),
    so no LoRA is applied twice."""
    if loras:
        _drop_workflow_loras(prompt)
    next_id = max((int(k) for k in prompt if str(k).isdigit()), default=0) + 1
    for unet in [k for k, n in prompt.items() if n["class_type"] == "UNETLoader"]:
        consumers = [(n, field) for n in prompt.values() for field, value in n["inputs"].items()
                     if value == [unet, 0]]
        source = [unet, 0]
        for name, strength in loras:
            node_id, next_id = str(next_id), next_id + 1
            prompt[node_id] = {"class_type": LORA_NODE, "_meta": {"title": f"LoRA {name}"},
                               "inputs": {"model": source, "lora_name": name, "strength_model": strength}}
            source = [node_id, 0]
        for node, field in consumers:
            node["inputs"][field] = source
    return prompt


def _drop_workflow_loras(prompt: dict) -> None:
    """Remove the LoraLoaderModelOnly nodes chained right after a UNETLoader; their consumers take the UNET."""
    for unet in [n for n in prompt.values() if n["class_type"] == "UNETLoader"]:
        unet_id = next(k for k, n in prompt.items() if n is unet)
        for key in _lora_chain(prompt, unet_id):
            source = prompt.pop(key)["inputs"]["model"]
            for node in prompt.values():
                node["inputs"].update({f: source for f, v in node["inputs"].items() if v == [key, 0]})


def check_model_files(prompt: dict) -> list[str]:
    """Raise ``ModelFileError`` for a transformer or LoRA the run cannot use; → one line per file checked.

    Names no models folder holds are left to the missing-files list.
    """
    import folder_paths

    lines = []
    for node in [n for n in prompt.values() if n["class_type"] == "UNETLoader"]:
        base_path = folder_paths.get_full_path("diffusion_models", node["inputs"]["unet_name"])
        if base_path is None:
            continue
        base = mf.check_diffusion_model(base_path)
        lines.append(f"{node['inputs']['unet_name']}: {base.describe()}")
        for lora in _loras_after(prompt, node):
            path = folder_paths.get_full_path("loras", lora)
            if path is None:
                raise mf.ModelFileError(f"--lora {lora}: no such file in models/loras/ (or a loras path from "
                                        "--extra-model-paths). Put the LoRA there, or check its name.")
            info = mf.check_lora(path, base, base_path)
            lines.append(f"{lora}: LoRA, {len(info.modules)} modules, fits {node['inputs']['unet_name']}")
    return lines


def _loras_after(prompt: dict, unet: dict) -> list[str]:
    """The LoRA files chained directly after this UNETLoader (LoraLoaderModelOnly nodes), in order."""
    unet_id = next(k for k, n in prompt.items() if n is unet)
    return [prompt[k]["inputs"]["lora_name"] for k in _lora_chain(prompt, unet_id)]


def _lora_chain(prompt: dict, unet_id: str) -> list[str]:
    """Ids of the LoraLoaderModelOnly nodes chained directly after the UNETLoader ``unet_id``, in order."""
    ids, source = [], [unet_id, 0]
    while True:
        hit = next((k for k, n in prompt.items()
                    if n["class_type"] == LORA_NODE and n["inputs"].get("model") == source), None)
        if hit is None:
            return ids
        ids.append(hit)
        source = [hit, 0]


def check_for_run(prompt: dict, error_type: type[Exception]) -> None:
    """The runner's call: each file checked is logged; a refusal becomes the runner's ``error_type``."""
    try:
        for line in check_model_files(prompt):
            logging.getLogger("omnimatte.run").info("model file %s", line)
    except mf.ModelFileError as err:
        raise error_type(str(err)) from err
