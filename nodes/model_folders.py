"""Model folders the pack reads from, registered with ComfyUI's ``folder_paths``."""

import logging
import os

import folder_paths

EXPERTS_FOLDER = "omnimatte"
TEXT_EMBEDS_FOLDER = "omnimatte_text_embeds"
SAFETENSORS_ONLY = {".safetensors"}
PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY_WORLD_DIR = os.path.join(PACK_DIR, "toy_world")
TOY_WORLD_FOLDERS = ("diffusion_models", "vae", "omnimatte", "omnimatte_text_embeds")  # docs/toy_world.md


def _register(folder_name: str) -> None:
    """Add ``models/<folder_name>`` without dropping paths a user already configured.

    A key created by ``add_model_folder_path`` starts with no extensions, which
    matches every file; we list only ``.safetensors`` (no pickled weights).
    """
    default_path = os.path.join(folder_paths.models_dir, folder_name)
    folder_paths.add_model_folder_path(folder_name, default_path)
    paths, _extensions = folder_paths.folder_names_and_paths[folder_name]
    folder_paths.folder_names_and_paths[folder_name] = (paths, set(SAFETENSORS_ONLY))


def register_model_folder() -> None:
    _register(EXPERTS_FOLDER)
    _register(TEXT_EMBEDS_FOLDER)
    register_toy_world()


def host_reads_vae_width() -> bool:
    """ComfyUI v0.33+ reads a Wan 2.1 VAE's width from the file; v0.3.64 fixes it at 96."""
    import inspect

    import comfy.sd

    return "decoder.head.0.gamma" in inspect.getsource(comfy.sd.VAE.__init__)


def register_toy_world() -> None:
    """The embedded toy world's files (``toy_world/<folder>/easyomnimatte_toy_*``): listed by the stock
    loaders next to the user's own models, so the toy demo runs with nothing downloaded."""
    if not host_reads_vae_width():
        logging.getLogger(__name__).warning(
            "EasyOmnimatte: the embedded toy world (toy_world_demo workflow, `run.sh` without a clip) needs "
            "ComfyUI 0.33 or newer (its tiny Wan VAE has a width this ComfyUI cannot load); its files are not "
            "listed. Update ComfyUI to use it; everything else in the pack works here.")
        return
    for folder in TOY_WORLD_FOLDERS:
        folder_paths.add_model_folder_path(folder, os.path.join(TOY_WORLD_DIR, folder))
