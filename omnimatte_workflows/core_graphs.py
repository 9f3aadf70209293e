"""Graphs that pair the pack with ComfyUI's core nodes: SAM3 tracking for the masks, VOID for the plate."""

from __future__ import annotations

from omnimatte_workflows.casper_graphs import (LAYER_FILES, NOTE_COMMON, OBJECT_LAYER_FILES, OBJECTS_NOTE, WORK_HEIGHT,
                                                WORK_WIDTH, decompose_chain, object_chain, save_layers,
                                                save_object_layers)
from omnimatte_workflows.ui_graph import TITLES, Node, UIGraph


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
    return object_chain(g, masks, 7.5), "objects"


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
    d = decompose_chain(g, objects=_sam3_text_objects)
    save_object_layers(g, d, "omnimatte/sam3_objects")
    g.add("MarkdownNote", 4, 3, text="## Layers from a text prompt (SAM3)\n\n" +
          _note_without_mask_video(f"say what to separate in *{SAM3_TITLES['text']}*") + "\n" + SAM3_NOTE +
          "\n" + OBJECTS_NOTE + "\n**Outputs**: " + OBJECT_LAYER_FILES)
    return g.to_json()


def sam3_first_frame_mask() -> dict:
    g = UIGraph()
    d = decompose_chain(g, objects=_sam3_first_frame_mask)
    save_layers(g, d, "omnimatte/sam3_layers")
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
