"""EasyOmnimatte for ComfyUI: video layer decomposition with effects (V3 node pack).

ComfyUI imports this folder as a package and calls ``comfy_entrypoint``. The import is
guarded so that tools which import this file as a plain module (pytest's rootdir
discovery, linters) do not fail on the relative imports.

The library is imported under one name in a process, ``omnimatte_core`` (the nodes, training
and tests alike): the pack folder goes on ``sys.path`` (last, so ComfyUI's own ``nodes.py``
still wins over this pack's ``nodes/``). Two copies under two names would hold two
``ExpertRole`` enums, and an expert made by one would be refused by the other.
"""

WEB_DIRECTORY = "./web"

if __package__:
    import os
    import sys

    _PACK_DIR = os.path.dirname(os.path.abspath(__file__))
    if _PACK_DIR not in sys.path:
        sys.path.append(_PACK_DIR)

    from .nodes import comfy_entrypoint, register_model_folder

    register_model_folder()

    __all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]
