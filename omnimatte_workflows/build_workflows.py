"""Write the ready-made workflows (UI format, ``workflows/``) and their API copies (``tests/workflows_api/``).

The graphs are described here once; widget order, input and output types come from the host's
node definitions, so the files match the ComfyUI they were built against. Run after changing a
node's inputs:  ``source scripts/env.sh && "$OMNIMATTE_PY" -m omnimatte_workflows.build_workflows``
"""

from __future__ import annotations

import json
import logging

from omnimatte_host import comfy_host
from omnimatte_workflows import workflow_format as wf
from omnimatte_workflows.casper_graphs import (clean_plate_matte, decompose_layers, decompose_objects, remove_object,
                                                replace_background)
from omnimatte_workflows.core_graphs import sam3_first_frame_mask, sam3_text_objects, void_clean_plate_matte
from omnimatte_workflows.toy_graph import toy_world_demo

log = logging.getLogger("build_workflows")
WORKFLOWS_DIR = comfy_host.PACK_DIR / "workflows"
API_DIR = comfy_host.PACK_DIR / "tests" / "workflows_api"
WORKFLOWS = {"decompose_layers": decompose_layers, "remove_object": remove_object,
             "replace_background": replace_background, "clean_plate_matte": clean_plate_matte,
             "void_clean_plate_matte": void_clean_plate_matte, "toy_world_demo": toy_world_demo,
             "decompose_objects": decompose_objects, "sam3_text_objects": sam3_text_objects,
             "sam3_first_frame_mask": sam3_first_frame_mask,
             "remove_object_14b": lambda: remove_object(casper_14b=True),
             "clean_plate_matte_14b": lambda: clean_plate_matte(casper_14b=True)}


def build() -> dict[str, dict]:
    return {name: make() for name, make in WORKFLOWS.items()}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = comfy_host.find_comfyui()
    if path is None:
        raise SystemExit(comfy_host.NO_HOST_MESSAGE)
    comfy_host.import_comfy(path)
    comfy_host.load_nodes_with_pack()
    WORKFLOWS_DIR.mkdir(exist_ok=True)
    API_DIR.mkdir(exist_ok=True)
    for name, ui in build().items():
        definitions = {n["type"]: wf.node_definition(n["type"]) for n in ui["nodes"] if n["type"] not in wf.FRONTEND_ONLY}
        (WORKFLOWS_DIR / f"{name}.json").write_text(json.dumps(ui, indent=1) + "\n")
        (API_DIR / f"{name}.json").write_text(json.dumps(wf.ui_to_api(ui, definitions), indent=1) + "\n")
        log.info("wrote workflows/%s.json and tests/workflows_api/%s.json", name, name)


if __name__ == "__main__":
    main()
