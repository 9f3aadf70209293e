"""OmnimatteSaveTextEmbeds / OmnimatteLoadTextEmbeds: cache a CONDITIONING on disk."""

from __future__ import annotations

import os

import folder_paths
from comfy_api.latest import io

from omnimatte_core.text_embeds import load_conditioning, save_conditioning
from .model_folders import TEXT_EMBEDS_FOLDER

CATEGORY = "EasyOmnimatte"


class OmnimatteSaveTextEmbeds(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="OmnimatteSaveTextEmbeds",
            display_name="Save Text Embeddings (Omnimatte)",
            category=CATEGORY,
            description="Saves a text encoder's CONDITIONING to models/omnimatte_text_embeds/ so later "
                        "runs can load it without the 11 GB umt5 text encoder.",
            inputs=[
                io.Conditioning.Input("conditioning", tooltip="Output of CLIPTextEncode (umt5, type wan)."),
                io.String.Input("name", default="background_prompt",
                                tooltip="File name without extension; letters, digits, '-', '_' and '/' for subfolders."),
                io.Boolean.Input("overwrite", default=False,
                                 tooltip="Replace an existing file of the same name. Off: an existing file is an error."),
            ],
            outputs=[io.Conditioning.Output(display_name="conditioning",
                                            tooltip="The input, passed through unchanged.")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, conditioning, name: str, overwrite: bool) -> io.NodeOutput:
        path = _target_path(name)
        if os.path.exists(path) and not overwrite:
            raise ValueError(f"OmnimatteSaveTextEmbeds: {path} already exists. Pick another name or "
                             "turn 'overwrite' on.")
        save_conditioning(conditioning, path)
        return io.NodeOutput(conditioning, ui={"text": [f"saved {os.path.basename(path)}"]})


class OmnimatteLoadTextEmbeds(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="OmnimatteLoadTextEmbeds",
            display_name="Load Text Embeddings (Omnimatte)",
            category=CATEGORY,
            description="Loads a CONDITIONING saved by OmnimatteSaveTextEmbeds (no text encoder needed).",
            inputs=[
                io.Combo.Input("embeds_name", options=folder_paths.get_filename_list(TEXT_EMBEDS_FOLDER),
                               tooltip="A .safetensors file in models/omnimatte_text_embeds/."),
            ],
            outputs=[io.Conditioning.Output(display_name="conditioning")],
        )

    @classmethod
    def fingerprint_inputs(cls, embeds_name: str):
        path = folder_paths.get_full_path(TEXT_EMBEDS_FOLDER, embeds_name)
        return (path, os.path.getmtime(path)) if path and os.path.exists(path) else embeds_name

    @classmethod
    def execute(cls, embeds_name: str) -> io.NodeOutput:
        path = folder_paths.get_full_path(TEXT_EMBEDS_FOLDER, embeds_name)
        if path is None:
            raise ValueError(f"OmnimatteLoadTextEmbeds: '{embeds_name}' is not in "
                             f"{folder_paths.get_folder_paths(TEXT_EMBEDS_FOLDER)}. Save it first with "
                             "OmnimatteSaveTextEmbeds, or copy the file there and refresh.")
        try:
            return io.NodeOutput(load_conditioning(path))
        except ValueError as err:
            raise ValueError(f"OmnimatteLoadTextEmbeds: {err}") from err


def _target_path(name: str) -> str:
    clean = name.strip().removesuffix(".safetensors")
    parts = clean.replace("\\", "/").split("/")
    if not clean or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"OmnimatteSaveTextEmbeds: '{name}' is not a usable file name. Use e.g. "
                         "'beach_prompt' or 'clips/beach_prompt'.")
    root = folder_paths.get_folder_paths(TEXT_EMBEDS_FOLDER)[0]
    return os.path.join(root, *parts) + ".safetensors"
