"""LoadOmnimatteExperts: the Effect and Quality experts from ``models/omnimatte``."""

from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from omnimatte_core.expert_file import load_expert_cached
from omnimatte_core.experts import ExpertPair
from .checks import CATEGORY
from .model_folders import EXPERTS_FOLDER

NODE = "LoadOmnimatteExperts"
NONE = "none"
OmnimatteExperts = io.Custom("OMNIMATTE_EXPERTS")


def _choices() -> list[str]:
    return [NONE] + folder_paths.get_filename_list(EXPERTS_FOLDER)


class LoadOmnimatteExperts(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="LoadOmnimatteExperts",
            display_name="Load Omnimatte Experts",
            category=CATEGORY,
            description="Loads the Effect Expert (finds shadows, reflections, smoke; used at high noise) and the "
                        "Quality Expert (sharp matte; used after τ) from models/omnimatte/.",
            inputs=[
                io.Combo.Input("effect_expert", options=_choices(),
                               tooltip="Effect Expert file (.safetensors made by training/). 'none' = quality "
                                       "expert only (an ablation: effects are usually lost)."),
                io.Float.Input("effect_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Scales the Effect Expert's LoRA (1 = as trained)."),
                io.Combo.Input("quality_expert", options=_choices(),
                               tooltip="Quality Expert file. 'none' = effect expert for every step. Both "
                                       "'none': background only (the stock remover, no alpha; pair it with "
                                       "Alpha from Clean Plate)."),
                io.Float.Input("quality_strength", default=1.0, min=0.0, max=2.0, step=0.05,
                               tooltip="Scales the Quality Expert's LoRA (1 = as trained)."),
            ],
            outputs=[OmnimatteExperts.Output(display_name="experts", tooltip="For BranchWanSampler.")],
        )

    @classmethod
    def fingerprint_inputs(cls, effect_expert: str, effect_strength: float, quality_expert: str,
                           quality_strength: float):
        """Changes when a chosen file changes on disk, so ComfyUI's cache reloads it."""
        stamps = []
        for name in (effect_expert, quality_expert):
            path = folder_paths.get_full_path(EXPERTS_FOLDER, name) if name != NONE else None
            stamps.append((path, os.path.getmtime(path), os.path.getsize(path)) if path and os.path.exists(path)
                          else name)
        return (*stamps, effect_strength, quality_strength)

    @classmethod
    def execute(cls, effect_expert: str, effect_strength: float, quality_expert: str,
                quality_strength: float) -> io.NodeOutput:
        effect = _load(effect_expert, effect_strength, "effect_expert")
        quality = _load(quality_expert, quality_strength, "quality_expert")
        try:
            experts = ExpertPair(effect, quality)
        except ValueError as err:
            raise ValueError(f"{NODE}: {err}") from err
        return io.NodeOutput(experts)


def _load(name: str, strength: float, field: str):
    if name == NONE:
        return None
    path = folder_paths.get_full_path(EXPERTS_FOLDER, name)
    if path is None:
        raise ValueError(f"{NODE}: {field} '{name}' is not in {folder_paths.get_folder_paths(EXPERTS_FOLDER)}. "
                         "Put the expert .safetensors there (train it with training/) and refresh.")
    try:
        return load_expert_cached(path, strength)
    except ValueError as err:
        raise ValueError(f"{NODE}: {err}") from err
