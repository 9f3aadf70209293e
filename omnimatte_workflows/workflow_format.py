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
            "output_name": list(getattr(cls, "RETURN_NAMES", None) or outputs),
            "display_name": nodes.NODE_DISPLAY_NAME_MAPPINGS.get(node_type, node_type)}


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


def input_sockets(spec: Spec) -> list[dict]:
    """A UI node's ``inputs`` as the frontend (1.16+) lays them out, unlinked: the connection inputs
    first, then one socket per widget (``"widget": {"name": ...}``), each group in the host's order.

    A link's target slot is an index into this list, so it matches what the frontend saves.
    """
    specs = input_specs(spec)
    sockets = [{"name": name, "type": kind, "link": None} for name, kind, options in specs
               if not is_widget(kind, options)]
    widgets = [{"name": name, "type": "COMBO" if combo_options(kind, options) is not None else kind,
                "widget": {"name": name}, "link": None} for name, kind, options in specs if is_widget(kind, options)]
    return sockets + widgets


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
        # an untitled node shows (and the frontend's graphToPrompt names it by) its display name
        title = node.get("title") or definitions[node["type"]].get("display_name") or node["type"]
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs, "_meta": {"title": title}}
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


def _mask_chain(prompt: dict, key: str, file_name: str, title: str, size: dict) -> str:
    """LoadVideo → OmnimatteVideoFrames (working size) → ImageToMask (red), keys prefixed ``key``; → the mask's key."""
    load, frames, mask = f"{key}_video", f"{key}_frames", f"{key}_mask"
    prompt[load] = {"class_type": "LoadVideo", "inputs": {"file": file_name}, "_meta": {"title": title}}
    prompt[frames] = {"class_type": "OmnimatteVideoFrames", "inputs": {"video": [load, 0], **size,
                                                                       "allow_truncated": False}}
    prompt[mask] = {"class_type": "ImageToMask", "inputs": {"image": [frames, 0], "channel": "red"}}
    return mask


def add_keep_mask(prompt: dict, file_name: str) -> dict:
    """Wire a keep-mask video into every ``OmnimatteConditioning``'s optional ``keep_mask``, in place.

    The chain mirrors the object mask's: LoadVideo → OmnimatteVideoFrames (at the video frames'
    size) → ImageToMask (red).
    """
    for key, node in list(prompt.items()):
        if node["class_type"] != "OmnimatteConditioning":
            continue
        size = _frames_size(prompt, node)
        node["inputs"]["keep_mask"] = [_mask_chain(prompt, f"{key}_keep", file_name, KEEP_MASK_TITLE, size), 0]
    return prompt


def use_object_masks(prompt: dict, masks: list[tuple[str, str]]) -> dict:
    """Several objects instead of one, in place: each (name, mask file) becomes a mask chain and an
    ``OmnimatteObject``, chained in order into every ``OmnimatteConditioning``'s ``objects``; the
    single object's chain goes, and each ``SaveOmnimatteLayers`` gets its decoder's ``layers``.

    Raises ValueError when another node also uses the single object's mask (such a workflow, e.g.
    the clean-plate matte, takes one object).
    """
    for key, node in list(prompt.items()):
        if node["class_type"] != "OmnimatteConditioning":
            continue
        size = _frames_size(prompt, node)
        old_chain = _chain_above(prompt, node["inputs"].pop("object_mask")[0])
        users = [k for k, n in prompt.items() if k not in old_chain and
                 any(isinstance(v, list) and v and v[0] in old_chain for v in n["inputs"].values())]
        if users:
            names = sorted({prompt[k]["class_type"] for k in users})
            raise ValueError(f"this workflow also gives the object mask to {', '.join(names)}, which takes one "
                             "object; give one --mask")
        for old in old_chain:
            del prompt[old]
        previous = None
        for i, (name, file_name) in enumerate(masks):
            mask = _mask_chain(prompt, f"{key}_object{i}", file_name, f"Object mask video {i + 1}", size)
            inputs = {"mask": [mask, 0], "name": name, **({"objects": [previous, 0]} if previous else {})}
            previous = f"{key}_object{i}"
            prompt[previous] = {"class_type": "OmnimatteObject", "inputs": inputs}
        node["inputs"]["objects"] = [previous, 0]
    for node in prompt.values():
        source = node["inputs"].get("background") if node["class_type"] == "SaveOmnimatteLayers" else None
        if source and prompt[source[0]]["class_type"] == "OmnimatteDecode":
            node["inputs"]["layers"] = [source[0], 2]
    return prompt


def _frames_size(prompt: dict, conditioning: dict) -> dict:
    """The size the conditioning's video frames are decoded at (a mask must match them), else its own."""
    source = conditioning["inputs"].get("video")
    node = prompt.get(source[0]) if isinstance(source, list) else None
    if node is not None and node["class_type"] == "OmnimatteVideoFrames":
        return {k: node["inputs"][k] for k in ("width", "height")}
    return {k: conditioning["inputs"][k] for k in ("width", "height")}


def _chain_above(prompt: dict, key: str) -> set[str]:
    """``key`` and every node it takes input from (the single object's LoadVideo → frames → mask)."""
    chain, pending = set(), [key]
    while pending:
        current = pending.pop()
        chain.add(current)
        pending += [v[0] for v in prompt[current]["inputs"].values() if isinstance(v, list) and v
                    and isinstance(v[0], str) and v[0] in prompt and v[0] not in chain]
    return chain
