"""Write the ready-made workflows (UI format, ``workflows/``) and their API copies (``tests/workflows_api/``).

The graphs are described here once; widget order, input and output types come from the host's
node definitions, so the files match the ComfyUI they were built against. Run after changing a
node's inputs:  ``source scripts/env.sh && "$OMNIMATTE_PY" -m scripts.build_workflows``
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from scripts import comfy_host
from scripts import workflow_format as wf

log = logging.getLogger("build_workflows")
WORKFLOWS_DIR = comfy_host.PACK_DIR / "workflows"
API_DIR = comfy_host.PACK_DIR / "tests" / "workflows_api"
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


def _models(g: UIGraph, experts: bool = True, casper_14b: bool = False) -> dict[str, Node]:
    """The loaders; ``casper_14b``: Wan2.1-Fun-14B-InP with the Casper LoRA (core LoraLoaderModelOnly, 1.0)."""
    unet = g.add("UNETLoader", 0, 0, unet_name=MODEL_FILES["unet_14b" if casper_14b else "unet_name"][0])
    shift = g.add("ModelSamplingSD3", 1, 0, shift=5.0)
    if casper_14b:
        lora = g.add("LoraLoaderModelOnly", 1, -1, title="Casper LoRA (14B)", lora_name=MODEL_FILES["lora_name"][0],
                     strength_model=1.0)
        g.link(unet, 0, lora, "model")
        unet = lora
    g.link(unet, 0, shift, "model")
    clip = g.add("CLIPLoader", 0, 1, clip_name=MODEL_FILES["clip_name"][0], type="wan")
    positive = g.add("CLIPTextEncode", 1, 1, title=TITLES["positive"], text="a video of a beautiful background.")
    negative = g.add("CLIPTextEncode", 1, 2, title=TITLES["negative"], text="")
    for encode in (positive, negative):
        g.link(clip, 0, encode, "clip")
    vae = g.add("VAELoader", 0, 3, vae_name=MODEL_FILES["vae_name"][0])
    vision = g.add("CLIPVisionLoader", 0, 4, clip_name=MODEL_FILES["clip_vision"][0])
    files = {k: MODEL_FILES[k][0] if experts else "none" for k in ("effect_expert", "quality_expert")}
    loaded = g.add("LoadOmnimatteExperts", 0, 5, **files)
    return {"model": shift, "positive": positive, "negative": negative, "vae": vae, "vision": vision,
            "experts": loaded}


WORK_WIDTH, WORK_HEIGHT = 832, 480  # Casper's working size


def _mask_video(g: UIGraph, row: float, title: str, file_name: str) -> Node:
    """LoadVideo → Video Frames at Working Size → ImageToMask (red): a mask video at the working size."""
    mask_video = g.add("LoadVideo", 0, row, title=title, file=file_name)
    mask_frames = g.add("OmnimatteVideoFrames", 1, row, width=WORK_WIDTH, height=WORK_HEIGHT)
    g.link(mask_video, 0, mask_frames, "video")
    mask = g.add("ImageToMask", 2, row, channel="red")
    g.link(mask_frames, "frames", mask, "image")
    return mask


def _one_mask_video(g: UIGraph, frames: Node) -> tuple[Node, str]:
    return _mask_video(g, 7.5, TITLES["mask"], "mask_00.mp4"), "object_mask"


def _decompose(g: UIGraph, experts: bool = True, objects=_one_mask_video,
               casper_14b: bool = False) -> dict[str, Node]:
    """Shared part: load video + mask(s) at the working size, condition, sample, decode.

    ``objects(g, frames)`` adds the object masks' nodes → (node, conditioning input it feeds).
    """
    m = _models(g, experts, casper_14b)
    size = {"width": WORK_WIDTH, "height": WORK_HEIGHT}
    video = g.add("LoadVideo", 0, 6, title=TITLES["video"], file="input_video.mp4")
    frames = g.add("OmnimatteVideoFrames", 1, 6, **size)
    g.link(video, 0, frames, "video")
    mask, mask_input = objects(g, frames)
    first = g.add("ImageFromBatch", 2, 4.5, batch_index=0, length=1)
    g.link(frames, "frames", first, "image")
    encode = g.add("CLIPVisionEncode", 3, 4.5, crop="none")
    g.link(m["vision"], 0, encode, "clip_vision")
    g.link(first, 0, encode, "image")
    cond = g.add("OmnimatteConditioning", 3, 1, mask_threshold=0.94, **size)
    for name, source in (("positive", m["positive"]), ("negative", m["negative"]), ("vae", m["vae"])):
        g.link(source, 0, cond, name)
    g.link(frames, "frames", cond, "video")
    g.link(mask, 0, cond, mask_input)
    g.link(encode, 0, cond, "clip_vision_output")
    sampler = g.add("BranchWanSampler", 4, 0, seed=43, steps=50, cfg=1.0, tau=0.5)
    g.link(m["model"], 0, sampler, "model")
    g.link(m["experts"], 0, sampler, "experts")
    for i, name in enumerate(("positive", "negative", "latent")):
        g.link(cond, i, sampler, name)
    decode = g.add("OmnimatteDecode", 5, 0)
    g.link(m["vae"], 0, decode, "vae")
    g.link(sampler, 0, decode, "background")
    g.link(sampler, 1, decode, "alpha")
    return {"video": video, "decode": decode, "frames": frames, "mask": mask}


def _object_chain(g: UIGraph, masks: list[tuple[Node, int]], row: float) -> Node:
    """Omnimatte Object per mask (front layer first), chained; → the last one (all the objects)."""
    previous = None
    for k, (source, output) in enumerate(masks):
        obj = g.add("OmnimatteObject", 3, row + 1.5 * k, name=f"object_{k}")
        g.link(source, output, obj, "mask")
        if previous is not None:
            g.link(previous, 0, obj, "objects")
        previous = obj
    return previous


def _two_mask_videos(g: UIGraph, frames: Node) -> tuple[Node, str]:
    masks = [_mask_video(g, 7.5 + 1.5 * k, f"{TITLES['mask']}{'' if k == 0 else ' 2'}", f"mask_0{k}.mp4")
             for k in range(2)]
    return _object_chain(g, [(m, 0) for m in masks], 7.5), "objects"


def _save_layers(g: UIGraph, d: dict[str, Node], folder: str, **switches) -> Node:
    """SaveOmnimatteLayers: the layers at the source size, streamed against the original video."""
    save = g.add("SaveOmnimatteLayers", 6, 0, title="Save layers", folder=folder, **switches)
    g.link(d["video"], 0, save, "source_video")
    g.link(d["decode"], 0, save, "background")
    g.link(d["decode"], 1, save, "alpha")
    return save


NOTE_COMMON = """**Inputs**: put the clip in ComfyUI's `input/` folder and pick it in *{video}*; pick the
object's mask video in *{mask}* (white = object, one object per file). Describe the **background**
in *{positive}* (e.g. "a video of a beautiful beach."). Working size 832×480 (multiples of 16; set
it on both *Video Frames at Working Size* nodes and on *Omnimatte Conditioning*); clips of up to
81 frames run as one window (longer ones run too, slower, with a warning). *Save layers* writes
at the clip's own size and frame rate, streaming the original video.

**Models**: the Casper transformer in `models/diffusion_models/`, the two experts (from this pack's
`training/`) in `models/omnimatte/`, plus the stock umt5, clip_vision_h and wan_2.1_vae files. See
the pack's README. **τ** on Branch Wan Sampler: lower = crisper matte, higher = stronger effects.
"""
LAYER_FILES = """In `output/omnimatte/<folder>/`: `rgba/` PNGs with straight alpha (the layer to composite),
`alpha/` greyscale PNGs (object + shadows, reflections, smoke), `background/background.mp4` (the
clean plate, H.264)."""


def decompose_layers() -> dict:
    g = UIGraph()
    d = _decompose(g)
    _save_layers(g, d, "omnimatte/layers")
    g.add("MarkdownNote", 4, 3, text="## Decompose a video into layers\n\n" + NOTE_COMMON.format(**TITLES) +
          "\n**Outputs**: " + LAYER_FILES)
    return g.to_json()


def remove_object(casper_14b: bool = False) -> dict:
    g = UIGraph()
    d = _decompose(g, experts=not casper_14b, casper_14b=casper_14b)
    _save_layers(g, d, "omnimatte/clean_plate" + ("_14b" if casper_14b else ""), save_rgba=False, save_alpha=False)
    g.add("MarkdownNote", 4, 3, text="## Remove an object and its effects\n\n" + NOTE_COMMON.format(**TITLES) +
          (NOTE_14B if casper_14b else "") + "\n**Output**: `background/background.mp4`, the clean plate, with the "
          "object *and* its shadows/reflections removed.")
    return g.to_json()


NOTE_14B = """
**14B**: *Load Diffusion Model* holds alibaba-pai's Wan2.1-Fun-14B-InP (one file; join its shards with
`python -m scripts.convert_casper`) and *Casper LoRA (14B)* Gen-Omnimatte's Casper LoRA from
`models/loras/` (strength 1.0, as their merge). The experts stay **none**: they are trained for one base
size. See the README's *Model files*.
"""


def replace_background() -> dict:
    g = UIGraph()
    d = _decompose(g)
    save = _save_layers(g, d, "omnimatte/composite", save_rgba=False, save_alpha=False, save_background=False)
    new_video = g.add("LoadVideo", 5, 3, title=TITLES["new_background"], file="new_background.mp4")
    g.link(new_video, 0, save, "new_background")
    g.add("MarkdownNote", 4, 3, text="## Replace the background\n\n" + NOTE_COMMON.format(**TITLES) +
          f"\nPick the new background in *{TITLES['new_background']}* (a video; a shorter one loops — "
          "switch *short_background* to hold_last on Save layers). The foreground keeps its shadows and "
          "reflections. **Output**: `composite/composite.mp4`.")
    return g.to_json()


def clean_plate_matte(casper_14b: bool = False) -> dict:
    """No experts: the remover's background (the sampler's background-only mode) → Alpha from Clean Plate."""
    g = UIGraph()
    d = _decompose(g, experts=False, casper_14b=casper_14b)
    folder = "omnimatte/clean_plate_matte" + ("_14b" if casper_14b else "")
    matte = g.add("AlphaFromCleanPlate", 5, 2)
    g.link(d["frames"], "frames", matte, "video")
    g.link(d["decode"], 0, matte, "clean_plate")
    g.link(d["mask"], 0, matte, "object_mask")
    save = g.add("SaveOmnimatteLayers", 6, 0, title="Save layers", folder=folder)
    g.link(d["video"], 0, save, "source_video")
    g.link(d["decode"], 0, save, "background")
    g.link(matte, 0, save, "alpha")
    g.add("MarkdownNote", 4, 3, text="## Layers without trained experts\n\n" + NOTE_COMMON.format(**TITLES) +
          "\nBoth experts are **none**: the sampler runs the remover alone (background only) and *Alpha from "
          "Clean Plate* finds the matte, shadows and reflections included, as the difference between the video and "
          "that plate (docs/clean_plate_matte.md). Only the Casper transformer is needed. " +
          (NOTE_14B if casper_14b else "") + "**Outputs**: " + LAYER_FILES.replace("omnimatte/<folder>", folder))
    return g.to_json()


OBJECT_LAYER_FILES = """In `output/omnimatte/<folder>/`: all the objects together — `background/background.mp4`
(the clean plate, every object and its effects removed), `alpha/` and `rgba/`. In
`output/omnimatte/<folder>-<name>/`, one per object: its own `rgba/` (straight alpha), `alpha/`
(that object with its shadows and reflections) and `background/` (that object removed, the
others kept)."""
OBJECTS_NOTE = """Each *Omnimatte Object* adds one object (front layer first; give it a `name` for its
folder). Each object's layer treats the others as kept, and one more pair removes them all: the
sampler runs K + 1 pairs (*pairs* = auto batches them when memory allows, else one at a time; the
layers are the same). *Omnimatte Select Layer* picks one object's layer for the stock nodes;
*Composite Layer Stack* re-composites them all, over the plate or a new background.
"""


def _save_object_layers(g: UIGraph, d: dict[str, Node], folder: str) -> Node:
    save = _save_layers(g, d, folder)
    g.link(d["decode"], "layers", save, "layers")
    return save


def decompose_objects() -> dict:
    g = UIGraph()
    d = _decompose(g, objects=_two_mask_videos)
    _save_object_layers(g, d, "omnimatte/objects")
    g.add("MarkdownNote", 4, 3, text="## Several objects, a layer each\n\n" + NOTE_COMMON.format(**TITLES) +
          f"\nPick each object's mask video in *{TITLES['mask']}* and *{TITLES['mask']} 2* (copy a mask "
          "chain and an *Omnimatte Object* for more). " + OBJECTS_NOTE + "\n**Outputs**: " + OBJECT_LAYER_FILES)
    return g.to_json()


SAM3_FILE = "sam3.1_multiplex_fp16.safetensors"  # as core's SAM3 blueprints name it
SAM3_TITLES = {"text": "Objects to find (SAM3 text prompt)", "first_mask": "First-frame object mask"}
SAM3_NOTE = """**SAM3** (core nodes, ComfyUI v0.33+) finds and tracks the objects, so no mask video is needed.
Put `{file}` in `models/checkpoints/` (core's SAM3 templates name it). Masks come out at the working
size, as the frames they were tracked on. SAM3's object numbers follow detection order: check them
with *SAM3 Track Preview* and set *object_indices* on each *SAM3 Track to Mask* to the object you want.
""".format(file=SAM3_FILE)


def _note_without_mask_video(masks_from: str) -> str:
    """NOTE_COMMON with its mask-video sentence replaced by where the masks come from."""
    sentence = f"pick the\nobject's mask video in *{TITLES['mask']}* (white = object, one object per file)"
    note = NOTE_COMMON.format(**TITLES)
    if sentence not in note:
        raise ValueError("NOTE_COMMON changed: update _note_without_mask_video")
    return note.replace(sentence, masks_from)


def _sam3_model(g: UIGraph) -> Node:
    return g.add("CheckpointLoaderSimple", 2, 9, title="SAM3", ckpt_name=SAM3_FILE)


def _sam3_text_objects(g: UIGraph, frames: Node) -> tuple[Node, str]:
    sam3 = _sam3_model(g)
    text = g.add("CLIPTextEncode", 2, 10.5, title=SAM3_TITLES["text"], text="person")
    g.link(sam3, 1, text, "clip")
    track = g.add("SAM3_VideoTrack", 3, 9, max_objects=2)
    g.link(frames, "frames", track, "images")
    g.link(sam3, 0, track, "model")
    g.link(text, 0, track, "conditioning")
    masks = []
    for k in range(2):
        to_mask = g.add("SAM3_TrackToMask", 4, 9 + 1.5 * k, object_indices=str(k))
        g.link(track, 0, to_mask, "track_data")
        masks.append((to_mask, 0))
    return _object_chain(g, masks, 7.5), "objects"


def _sam3_first_frame_mask(g: UIGraph, frames: Node) -> tuple[Node, str]:
    sam3 = _sam3_model(g)
    image = g.add("LoadImage", 0, 7.5, title=SAM3_TITLES["first_mask"], image="first_frame_mask.png")
    scaled = g.add("ImageScale", 1, 7.5, width=WORK_WIDTH, height=WORK_HEIGHT, crop="disabled")
    g.link(image, 0, scaled, "image")
    mask = g.add("ImageToMask", 2, 7.5, channel="red")
    g.link(scaled, 0, mask, "image")
    track = g.add("SAM3_VideoTrack", 3, 9, max_objects=1)
    g.link(frames, "frames", track, "images")
    g.link(sam3, 0, track, "model")
    g.link(mask, 0, track, "initial_mask")
    to_mask = g.add("SAM3_TrackToMask", 4, 9, object_indices="0")
    g.link(track, 0, to_mask, "track_data")
    return to_mask, "object_mask"


def sam3_text_objects() -> dict:
    g = UIGraph()
    d = _decompose(g, objects=_sam3_text_objects)
    _save_object_layers(g, d, "omnimatte/sam3_objects")
    g.add("MarkdownNote", 4, 3, text="## Layers from a text prompt (SAM3)\n\n" +
          _note_without_mask_video(f"say what to separate in *{SAM3_TITLES['text']}*") + "\n" + SAM3_NOTE +
          "\n" + OBJECTS_NOTE + "\n**Outputs**: " + OBJECT_LAYER_FILES)
    return g.to_json()


def sam3_first_frame_mask() -> dict:
    g = UIGraph()
    d = _decompose(g, objects=_sam3_first_frame_mask)
    _save_layers(g, d, "omnimatte/sam3_layers")
    g.add("MarkdownNote", 4, 3, text="## Layers from a first-frame mask (SAM3)\n\n" +
          _note_without_mask_video(f"paint the object white on black over the first frame and pick that "
                                   f"image in *{SAM3_TITLES['first_mask']}*") + "\n" + SAM3_NOTE + "\n**Outputs**: " + LAYER_FILES)
    return g.to_json()


VOID_FILES = {"unet_name": "void_pass1.safetensors", "clip_name": "t5xxl_fp16.safetensors",
              "vae_name": "cogvideox_vae.safetensors"}  # core's "Video Inpaint (VOID)" blueprint names
VOID_SIZE, VOID_LENGTH = (672, 384), 45


def void_clean_plate_matte() -> dict:
    """Core VOID's removal (pass 1, as core's blueprint) → the plate → Alpha from Clean Plate; no pack model.

    VOID's quadmask is black = remove, so the pack's white-is-object mask goes through InvertMask.
    The clip is cut to VOID's ``length`` frames (one Int feeds both) so plate and video match.
    """
    g = UIGraph()
    width, height = VOID_SIZE
    video = g.add("LoadVideo", 0, 6, title=TITLES["video"], file="input_video.mp4")
    frames = g.add("OmnimatteVideoFrames", 1, 6, width=width, height=height)
    g.link(video, 0, frames, "video")
    mask_video = g.add("LoadVideo", 0, 7.5, title=TITLES["mask"], file="mask_00.mp4")
    mask_frames = g.add("OmnimatteVideoFrames", 1, 7.5, width=width, height=height)
    g.link(mask_video, 0, mask_frames, "video")
    length = g.add("PrimitiveInt", 1, 4.5, title="Frames for VOID (45, 53, 61, 69, 77, 85 …)", value=VOID_LENGTH)
    clip, clip_mask = g.add("ImageFromBatch", 2, 6, batch_index=0), g.add("ImageFromBatch", 2, 7.5, batch_index=0)
    for source, target in ((frames, clip), (mask_frames, clip_mask)):
        g.link(source, "frames", target, "image")
        g.link(length, 0, target, "length")
    mask = g.add("ImageToMask", 3, 7.5, channel="red")
    g.link(clip_mask, 0, mask, "image")
    inverted = g.add("InvertMask", 3, 8.5)
    g.link(mask, 0, inverted, "mask")
    quadmask = g.add("VOIDQuadmaskPreprocess", 4, 8.5, dilate_width=0)
    g.link(inverted, 0, quadmask, "mask")
    text = g.add("CLIPLoader", 0, 1, clip_name=VOID_FILES["clip_name"], type="cogvideox")
    positive = g.add("CLIPTextEncode", 1, 1, title=TITLES["positive"], text="")
    negative = g.add("CLIPTextEncode", 1, 2, title=TITLES["negative"], text="")
    for encode in (positive, negative):
        g.link(text, 0, encode, "clip")
    vae = g.add("VAELoader", 0, 3, vae_name=VOID_FILES["vae_name"])
    model = g.add("UNETLoader", 0, 0, unet_name=VOID_FILES["unet_name"])
    cond = g.add("VOIDInpaintConditioning", 4, 1, width=width, height=height, batch_size=1)
    for name, source in (("positive", positive), ("negative", negative), ("vae", vae), ("video", clip),
                         ("quadmask", quadmask), ("length", length)):
        g.link(source, 0, cond, name)
    guider = g.add("CFGGuider", 5, 0, cfg=6.0)
    g.link(model, 0, guider, "model")
    g.link(cond, 0, guider, "positive")
    g.link(cond, 1, guider, "negative")
    sigmas = g.add("BasicScheduler", 5, 1, scheduler="simple", steps=30, denoise=1.0)
    g.link(model, 0, sigmas, "model")
    noise, sampler = g.add("RandomNoise", 5, 2, noise_seed=43), g.add("VOIDSampler", 5, 3)
    run = g.add("SamplerCustomAdvanced", 6, 0)
    for name, source in (("noise", noise), ("guider", guider), ("sampler", sampler), ("sigmas", sigmas)):
        g.link(source, 0, run, name)
    g.link(cond, 2, run, "latent_image")
    plate = g.add("VAEDecode", 7, 0)
    g.link(run, 0, plate, "samples")
    g.link(vae, 0, plate, "vae")
    matte = g.add("AlphaFromCleanPlate", 8, 0)
    g.link(clip, 0, matte, "video")
    g.link(plate, 0, matte, "clean_plate")
    g.link(mask, 0, matte, "object_mask")
    recover = g.add("RecoverForeground", 9, 0)
    g.link(clip, 0, recover, "video")
    g.link(plate, 0, recover, "background")
    g.link(matte, 0, recover, "alpha")
    alpha_image = g.add("MaskToImage", 9, 2)
    g.link(matte, 0, alpha_image, "mask")
    for row, (layer, source, slot) in enumerate((("rgba", recover, "rgba"), ("alpha", alpha_image, 0),
                                                 ("background", plate, 0))):
        save = g.add("SaveImage", 10, row * 1.5, title=f"Save {layer}",
                     filename_prefix=f"omnimatte/void/{layer}/{layer}")
        g.link(source, slot, save, "images")
    g.add("MarkdownNote", 6, 3, text=VOID_NOTE)
    return g.to_json()


VOID_NOTE = """## Layers from core VOID's removal (no pack model)

Core **VOID** (ComfyUI v0.33+, CogVideoX-based; models `void_pass1.safetensors`,
`t5xxl_fp16.safetensors`, `cogvideox_vae.safetensors` as in core's *Video Inpaint (VOID)*
blueprint) removes the object and its effects; *Alpha from Clean Plate* turns the difference
between the clip and VOID's plate into the matte (docs/clean_plate_matte.md). The mask video is
white = object; *InvertMask* gives VOID the black = remove it expects. The clip is cut to the
**Frames for VOID** count (45, 53, 61 … keep VOID's latent length even), and the layers are
saved at VOID's 672×384 as PNGs in `output/omnimatte/void/`. Checked against v0.33.0's node
definitions; not run here (VOID's weights are not available to the pack's tests).
"""


TOY_FILES = {  # the embedded toy world (toy_world/, docs/toy_world.md)
    "unet_name": "easyomnimatte_toy_remover.safetensors", "vae_name": "easyomnimatte_toy_vae.safetensors",
    "embeds_name": "easyomnimatte_toy_text.safetensors", "effect_expert": "easyomnimatte_toy_effect.safetensors",
    "quality_expert": "easyomnimatte_toy_quality.safetensors"}
TOY_DEMO_CLIP = "toy_shadow.safetensors"
TOY_SIZE, TOY_STEPS = 128, 20
TOY_LAYERS = ("background", "alpha", "foreground", "rgba")
TOY_NOTE = """## The toy world: EasyOmnimatte in miniature, nothing to download

Runs on a CPU in seconds with the pack's embedded **toy** models (a 128×128 Casper-like remover,
a tiny Wan VAE and Effect/Quality experts, all trained on procedural clips by `training/`). The
clip is a held-out toy clip the models never saw; *Load Toy Clip* also gives its ground truth to
compare with. **Real footage needs the real models** (Casper, trained experts): see the
`decompose_layers` workflow and the README. The toy models on real footage only show the plumbing.
"""


def toy_world_demo() -> dict:
    """The decompose chain on the embedded toy world: same nodes as real runs, toy loaders and clip."""
    g = UIGraph()
    unet = g.add("UNETLoader", 0, 0, unet_name=TOY_FILES["unet_name"])
    model = g.add("ModelSamplingSD3", 1, 0, shift=5.0)
    g.link(unet, 0, model, "model")
    text = g.add("OmnimatteLoadTextEmbeds", 0, 1, title="Toy text embedding", embeds_name=TOY_FILES["embeds_name"])
    vae = g.add("VAELoader", 0, 2, vae_name=TOY_FILES["vae_name"])
    experts = g.add("LoadOmnimatteExperts", 0, 3, effect_expert=TOY_FILES["effect_expert"],
                    quality_expert=TOY_FILES["quality_expert"])
    clip = g.add("LoadOmnimatteToyClip", 0, 4.5, title="Toy clip", clip=TOY_DEMO_CLIP)
    cond = g.add("OmnimatteConditioning", 2, 1, width=TOY_SIZE, height=TOY_SIZE, mask_threshold=0.5)
    for name, source in (("positive", text), ("negative", text), ("vae", vae)):
        g.link(source, 0, cond, name)
    g.link(clip, "video", cond, "video")
    g.link(clip, "object_mask", cond, "object_mask")
    g.link(clip, "keep_mask", cond, "keep_mask")
    sampler = g.add("BranchWanSampler", 3, 0, seed=43, steps=TOY_STEPS, cfg=1.0, tau=0.5)
    g.link(model, 0, sampler, "model")
    g.link(experts, 0, sampler, "experts")
    for i, name in enumerate(("positive", "negative", "latent")):
        g.link(cond, i, sampler, name)
    decode = g.add("OmnimatteDecode", 4, 0)
    g.link(vae, 0, decode, "vae")
    g.link(sampler, 0, decode, "background")
    g.link(sampler, 1, decode, "alpha")
    recover = g.add("RecoverForeground", 5, 0)
    g.link(clip, "video", recover, "video")
    g.link(decode, 0, recover, "background")
    g.link(decode, 1, recover, "alpha")
    alpha = g.add("MaskToImage", 5, 2)
    g.link(decode, 1, alpha, "mask")
    sources = {"background": (decode, 0), "alpha": (alpha, 0), "foreground": (recover, "foreground"),
               "rgba": (recover, "rgba")}
    for row, layer in enumerate(TOY_LAYERS):
        save = g.add("SaveImage", 6, row * 1.5, title=f"Save {layer}", filename_prefix=f"omnimatte/{layer}/{layer}")
        g.link(sources[layer][0], sources[layer][1], save, "images")
    gt = g.add("MaskToImage", 1, 6)
    g.link(clip, "gt_alpha", gt, "mask")
    preview = g.add("PreviewImage", 2, 6, title="Ground-truth alpha (object + shadow)")
    g.link(gt, 0, preview, "images")
    g.add("MarkdownNote", 3, 4.5, text=TOY_NOTE)  # below the sampler's live preview
    return g.to_json()


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
