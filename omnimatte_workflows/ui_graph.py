"""The UI-format graph the workflows are written in: nodes added by type with widget values by name,
links by socket name; widget order and socket types come from the host's node definitions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omnimatte_workflows import workflow_format as wf


REPACKAGED = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files"
MODEL_FILES = {  # loader input → (file name, models/ folder, public URL or None)
    "unet_name": ("wan2.1_casper_1.3b_inp.safetensors", "diffusion_models", None),
    "unet_14b": ("wan2.1_fun_14b_inp.safetensors", "diffusion_models", None),  # alibaba-pai's base, one file
    "lora_name": ("casper_wan2.1_fun_14b_lora.safetensors", "loras", None),  # Gen-Omnimatte's 14B Casper LoRA
    "clip_name": ("umt5_xxl_fp8_e4m3fn_scaled.safetensors", "text_encoders",
                  f"{REPACKAGED}/text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
    "clip_vision": ("clip_vision_h.safetensors", "clip_vision", f"{REPACKAGED}/clip_vision/clip_vision_h.safetensors"),
    "vae_name": ("wan_2.1_vae.safetensors", "vae", f"{REPACKAGED}/vae/wan_2.1_vae.safetensors"),
    "effect_expert": ("easyomnimatte_effect.safetensors", "omnimatte", None),
    "quality_expert": ("easyomnimatte_quality.safetensors", "omnimatte", None),
}
TITLES = {"video": "Input video", "mask": "Object mask video", "new_background": "New background video",
          "positive": "Background prompt", "negative": "Negative prompt"}
COLUMN, ROW = 380, 190


@dataclass
class Node:
    id: int
    type: str
    spec: dict
    ui: dict = field(default_factory=dict)


class UIGraph:
    """Builds a UI-format workflow from node types, widget values by name, and links by name."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.links: list[list] = []

    def add(self, node_type: str, col: float, row: float, title: str | None = None, **widgets: Any) -> Node:
        node_id = len(self.nodes) + 1
        spec = wf.node_definition(node_type) if node_type not in wf.NOTE_NODES else {"input": {}, "output": []}
        values = []
        for name, kind, options in wf.widget_slots(spec):
            if name is None:
                values.append("fixed" if kind == "CONTROL" else "image")
            elif name in widgets:
                values.append(widgets.pop(name))
            else:
                default = options.get("default")
                choices = wf.combo_options(kind, options)
                values.append(default if default is not None or not choices else choices[0])
        if node_type in wf.NOTE_NODES:
            values = [widgets.pop("text")]
        if widgets:
            raise KeyError(f"{node_type} has no widget(s) {sorted(widgets)}")
        ui = {"id": node_id, "type": node_type, "pos": [col * COLUMN, row * ROW], "size": [340, 120],
              "flags": {}, "order": node_id - 1, "mode": 0, "inputs": [], "outputs": [],
              "properties": {"Node name for S&R": node_type}, "widgets_values": values}
        if title:
            ui["title"] = title
        ui["inputs"] = wf.input_sockets(spec)
        names = spec.get("output_name") or spec["output"]
        ui["outputs"] = [{"name": n, "type": t, "links": [], "slot_index": i}
                         for i, (n, t) in enumerate(zip(names, spec["output"]))]
        self._add_models(ui, spec)
        node = Node(node_id, node_type, spec, ui)
        self.nodes.append(node)
        return node

    def _add_models(self, ui: dict, spec: dict) -> None:
        models = []
        for file_name, folder, url in MODEL_FILES.values():
            if url and file_name in ui["widgets_values"]:
                models.append({"name": file_name, "url": url, "directory": folder})
        if models:
            ui["properties"]["models"] = models

    def link(self, source: Node, output: str | int, target: Node, input_name: str) -> None:
        names = [o["name"] for o in source.ui["outputs"]]
        slot = output if isinstance(output, int) else names.index(output)
        link_id = len(self.links) + 1
        kind = source.ui["outputs"][slot]["type"]
        inputs = target.ui["inputs"]
        entry = next((i for i in inputs if i["name"] == input_name), None)
        if entry is None:
            raise KeyError(f"{target.type} has no input {input_name!r}")
        entry["link"] = link_id
        source.ui["outputs"][slot]["links"].append(link_id)
        self.links.append([link_id, source.id, slot, target.id, inputs.index(entry), kind])

    def to_json(self) -> dict:
        return {"id": "00000000-0000-4000-8000-0000000000" + f"{len(self.nodes):02d}", "revision": 0,
                "last_node_id": len(self.nodes), "last_link_id": len(self.links),
                "nodes": [n.ui for n in self.nodes], "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}}, "version": 0.4}
