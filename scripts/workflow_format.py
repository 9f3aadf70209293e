"""ComfyUI workflow formats: the UI graph (what the browser saves) and the API prompt.

The UI format keeps widget values as a positional list (``widgets_values``); turning it into
an API prompt needs each node's input definitions, read from the running host, so the order
is the host's. Frontend-only nodes (notes, reroutes) have no API form.
"""

from __future__ import annotations

from typing import Any

NOTE_NODES = {"Note", "MarkdownNote"}
FRONTEND_ONLY = NOTE_NODES | {"Reroute"}
WIDGET_KINDS = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload", "audio_upload", "upload")
Spec = dict[str, Any]  # one node's definition: {"input": {...}, "output": [...], "output_name": [...]}


def node_definition(node_type: str) -> Spec:
    """A node's definition as /object_info gives it, from the host loaded in this process."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(node_type)
    if cls is None:
        raise KeyError(f"unknown node type '{node_type}': is its pack installed?")
    if hasattr(cls, "GET_NODE_INFO_V1"):
        return cls.GET_NODE_INFO_V1()
    outputs = list(cls.RETURN_TYPES)
    return {"input": cls.INPUT_TYPES(), "output": outputs,
            "output_name": list(getattr(cls, "RETURN_NAMES", None) or outputs)}


def input_specs(spec: Spec) -> list[tuple[str, Any, dict]]:
    """(name, kind, options) of every input, required first, in the host's order."""
    items = []
    for group in ("required", "optional"):
        for name, value in spec["input"].get(group, {}).items():
            kind, options = value[0], (value[1] if len(value) > 1 and isinstance(value[1], dict) else {})
            items.append((name, kind, options))
    return items


def is_widget(kind: Any, options: dict) -> bool:
    return (isinstance(kind, list) or kind in WIDGET_KINDS) and not options.get("forceInput", False)


def combo_options(kind: Any, options: dict) -> list | None:
    if isinstance(kind, list):
        return kind
    return options.get("options") if kind == "COMBO" else None


def widget_slots(spec: Spec) -> list[tuple[str | None, Any, dict]]:
    """One entry per ``widgets_values`` position; ``None`` names the frontend's extra values
    (the control after a seed, the upload button after a file combo)."""
    slots = []
    for name, kind, options in input_specs(spec):
        if not is_widget(kind, options):
            continue
        slots.append((name, kind, options))
        if options.get("control_after_generate"):
            slots.append((None, "CONTROL", {}))
        if any(options.get(flag) for flag in UPLOAD_FLAGS):
            slots.append((None, "UPLOAD", {}))
    return slots


def ui_to_api(workflow: dict, definitions: dict[str, Spec]) -> dict:
    """UI workflow → API prompt ``{id: {"class_type", "inputs", "_meta"}}``; reroutes are followed."""
    nodes_by_id = {node["id"]: node for node in workflow["nodes"]}
    links = {link[0]: link for link in workflow["links"]}

    def source(link_id: int) -> list:
        _, origin, slot, *_ = links[link_id]
        origin_node = nodes_by_id[origin]
        if origin_node["type"] == "Reroute":
            return source(origin_node["inputs"][0]["link"])
        return [str(origin), slot]

    prompt = {}
    for node in workflow["nodes"]:
        if node["type"] in FRONTEND_ONLY or node.get("mode", 0) != 0:
            continue
        inputs = {}
        values = list(node.get("widgets_values") or [])
        for (name, _kind, _options), value in zip(widget_slots(definitions[node["type"]]), values):
            if name is not None:
                inputs[name] = value
        for item in node.get("inputs", []):
            if item.get("link") is not None:
                inputs[item["name"]] = source(item["link"])
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs,
                                   "_meta": {"title": node.get("title", node["type"])}}
    return prompt


def nodes_titled(prompt: dict, title: str) -> list[str]:
    return [key for key, node in prompt.items() if node.get("_meta", {}).get("title") == title]


def use_cached_text_embeds(prompt: dict, embeds_name: str) -> dict:
    """The one substitution rule for running without the umt5 text encoder.

    Every ``CLIPTextEncode`` becomes ``OmnimatteLoadTextEmbeds`` reading ``embeds_name`` (its
    output is the same CONDITIONING type); ``CLIPLoader`` nodes, left without consumers, go.
    """
    out = {}
    for key, node in prompt.items():
        if node["class_type"] == "CLIPLoader":
            continue
        if node["class_type"] == "CLIPTextEncode":
            node = {"class_type": "OmnimatteLoadTextEmbeds", "inputs": {"embeds_name": embeds_name},
                    "_meta": node.get("_meta", {})}
        out[key] = node
    return out


def without_clip_vision(prompt: dict) -> dict:
    """For a T2V-type base (no img_emb, e.g. the toy remover): drop the CLIP-H branch.

    ``CLIPVisionLoader``/``CLIPVisionEncode`` and the frame-0 ``ImageFromBatch`` that fed it go,
    and ``OmnimatteConditioning`` loses its optional ``clip_vision_output`` input.
    """
    vision = {k for k, n in prompt.items() if n["class_type"] in ("CLIPVisionLoader", "CLIPVisionEncode")}
    feeding = {n["inputs"].get("image", [None])[0] for k, n in prompt.items() if n["class_type"] == "CLIPVisionEncode"}
    drop = vision | {k for k in feeding if k and prompt[k]["class_type"] == "ImageFromBatch"}
    out = {}
    for key, node in prompt.items():
        if key in drop:
            continue
        if node["class_type"] == "OmnimatteConditioning":
            node = {**node, "inputs": {k: v for k, v in node["inputs"].items() if k != "clip_vision_output"}}
        out[key] = node
    return out


KEEP_MASK_TITLE = "Keep mask video"


def add_keep_mask(prompt: dict, file_name: str) -> dict:
    """Wire a keep-mask video into every ``OmnimatteConditioning``'s optional ``keep_mask``, in place.

    The chain mirrors the object mask's: LoadVideo → OmnimatteVideoFrames (at the same working
    size) → ImageToMask (red).
    """
    for key, node in list(prompt.items()):
        if node["class_type"] != "OmnimatteConditioning":
            continue
        size = {k: node["inputs"][k] for k in ("width", "height")}
        load, frames, mask = f"{key}_keep_video", f"{key}_keep_frames", f"{key}_keep_mask"
        prompt[load] = {"class_type": "LoadVideo", "inputs": {"file": file_name}, "_meta": {"title": KEEP_MASK_TITLE}}
        prompt[frames] = {"class_type": "OmnimatteVideoFrames",
                          "inputs": {"video": [load, 0], **size, "allow_truncated": False}}
        prompt[mask] = {"class_type": "ImageToMask", "inputs": {"image": [frames, 0], "channel": "red"}}
        node["inputs"]["keep_mask"] = [mask, 0]
    return prompt
