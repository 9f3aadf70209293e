"""EasyOmnimatte for ComfyUI: video layer decomposition with effects (V3 node pack).

ComfyUI imports this folder as a package and calls ``comfy_entrypoint``. The import is
guarded so that tools which import this file as a plain module (pytest's rootdir
discovery, linters) do not fail on the relative imports.
"""

WEB_DIRECTORY = "./web"

if __package__:
    from .nodes import comfy_entrypoint, register_model_folder

    register_model_folder()

    __all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
