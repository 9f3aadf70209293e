"""The pack's own graphs on Casper (1.3B or 14B + LoRA): decompose, remove, replace the background,
the clean-plate matte, several objects; the chains the other graphs reuse."""

from __future__ import annotations

from omnimatte_workflows.ui_graph import MODEL_FILES, TITLES, Node, UIGraph


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


def decompose_chain(g: UIGraph, experts: bool = True, objects=_one_mask_video,
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


def object_chain(g: UIGraph, masks: list[tuple[Node, int]], row: float) -> Node:
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
    return object_chain(g, [(m, 0) for m in masks], 7.5), "objects"


def save_layers(g: UIGraph, d: dict[str, Node], folder: str, **switches) -> Node:
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
    d = decompose_chain(g)
    save_layers(g, d, "omnimatte/layers")
    g.add("MarkdownNote", 4, 3, text="## Decompose a video into layers\n\n" + NOTE_COMMON.format(**TITLES) +
          "\n**Outputs**: " + LAYER_FILES)
    return g.to_json()


def remove_object(casper_14b: bool = False) -> dict:
    g = UIGraph()
    d = decompose_chain(g, experts=not casper_14b, casper_14b=casper_14b)
    save_layers(g, d, "omnimatte/clean_plate" + ("_14b" if casper_14b else ""), save_rgba=False, save_alpha=False)
    g.add("MarkdownNote", 4, 3, text="## Remove an object and its effects\n\n" + NOTE_COMMON.format(**TITLES) +
          (NOTE_14B if casper_14b else "") + "\n**Output**: `background/background.mp4`, the clean plate, with the "
          "object *and* its shadows/reflections removed.")
    return g.to_json()


NOTE_14B = """
**14B**: *Load Diffusion Model* holds alibaba-pai's Wan2.1-Fun-14B-InP (one file; join its shards with
`python -m omnimatte_run.convert_casper`) and *Casper LoRA (14B)* Gen-Omnimatte's Casper LoRA from
`models/loras/` (strength 1.0, as their merge). The experts stay **none**: they are trained for one base
size. See the README's *Model files*.
"""


def replace_background() -> dict:
    g = UIGraph()
    d = decompose_chain(g)
    save = save_layers(g, d, "omnimatte/composite", save_rgba=False, save_alpha=False, save_background=False)
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
    d = decompose_chain(g, experts=False, casper_14b=casper_14b)
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


def save_object_layers(g: UIGraph, d: dict[str, Node], folder: str) -> Node:
    save = save_layers(g, d, folder)
    g.link(d["decode"], "layers", save, "layers")
    return save


def decompose_objects() -> dict:
    g = UIGraph()
    d = decompose_chain(g, objects=_two_mask_videos)
    save_object_layers(g, d, "omnimatte/objects")
    g.add("MarkdownNote", 4, 3, text="## Several objects, a layer each\n\n" + NOTE_COMMON.format(**TITLES) +
          f"\nPick each object's mask video in *{TITLES['mask']}* and *{TITLES['mask']} 2* (copy a mask "
          "chain and an *Omnimatte Object* for more). " + OBJECTS_NOTE + "\n**Outputs**: " + OBJECT_LAYER_FILES)
    return g.to_json()
