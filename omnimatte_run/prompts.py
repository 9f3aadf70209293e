"""A workflow file → the API prompt of one run: its inputs, model files, working size and settings."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from omnimatte_host import comfy_host
from omnimatte_run import model_check
from omnimatte_run.graph_run import LOADERS, RunError
from omnimatte_workflows import workflow_format as wf

log = logging.getLogger("omnimatte.run")
WORKFLOWS_DIR = comfy_host.PACK_DIR / "workflows"
MODEL_FLAGS = {"unet": ("UNETLoader", "unet_name"), "text_encoder": ("CLIPLoader", "clip_name"),
               "clip_vision": ("CLIPVisionLoader", "clip_name"), "vae": ("VAELoader", "vae_name"),
               "effect_expert": ("LoadOmnimatteExperts", "effect_expert"),
               "quality_expert": ("LoadOmnimatteExperts", "quality_expert")}
# every width/height input in the workflows is the working size: the frames, the conditioning, SAM3's
# first-frame mask (ImageScale) and VOID's conditioning; --width/--height and --toy set them all
WORKING_SIZE = ("OmnimatteConditioning", "OmnimatteVideoFrames", "ImageScale", "VOIDInpaintConditioning")
SETTINGS = {"width": WORKING_SIZE, "height": WORKING_SIZE, "mask_threshold": ("OmnimatteConditioning",),
            "steps": ("BranchWanSampler",), "seed": ("BranchWanSampler",), "tau": ("BranchWanSampler",),
            "cfg": ("BranchWanSampler",), "window_frames": ("BranchWanSampler",),
            "window_overlap": ("BranchWanSampler",)}
NEEDS_NEW_BACKGROUND = "replace_background"
SINGLE_OBJECT_WORKFLOWS = ("clean_plate_matte", "void_clean_plate_matte")  # the plate matte takes one mask
OBJECT_MASK_TITLE = "Object mask video"



def build_prompt(args: argparse.Namespace, input_names: dict[str, str]) -> dict:
    """The workflow as an API prompt with this run's inputs, models and settings."""
    path = Path(args.workflow) if args.workflow.endswith(".json") else WORKFLOWS_DIR / f"{args.workflow}.json"
    if not path.is_file():
        raise RunError(f"no workflow {path}. Choose one of: {', '.join(p.stem for p in WORKFLOWS_DIR.glob('*.json'))}")
    prompt = workflow_prompt(path)
    masks = [(title[len(OBJECT_MASK_TITLE) + 1:], name) for title, name in input_names.items()
             if title.startswith(OBJECT_MASK_TITLE + ":")]
    for title, file_name in input_names.items():
        if title == wf.KEEP_MASK_TITLE or title.startswith(OBJECT_MASK_TITLE + ":"):
            continue  # wired in below, at the working size
        nodes = wf.nodes_titled(prompt, title)
        if not nodes:
            raise RunError(f"workflow {path.name} has no node titled '{title}' for this input")
        for key in nodes:
            prompt[key]["inputs"]["file"] = file_name
    text = args.prompt if args.prompt is not None else _prompt_beside(args.video)
    for key in wf.nodes_titled(prompt, "Background prompt"):
        prompt[key]["inputs"]["text"] = text
    if args.toy:
        prompt = toy_models(prompt)
    if args.text_embeds:
        prompt = wf.use_cached_text_embeds(prompt, args.text_embeds)
    for flag, (node_type, field) in MODEL_FLAGS.items():
        set_all(prompt, node_type, field, getattr(args, flag))
    model_check.add_loras(prompt, args.lora or [])
    for name, node_types in SETTINGS.items():
        for node_type in node_types:
            set_all(prompt, node_type, name, getattr(args, name))
    if wf.KEEP_MASK_TITLE in input_names:
        wf.add_keep_mask(prompt, input_names[wf.KEEP_MASK_TITLE])
    if masks:
        try:
            wf.use_object_masks(prompt, masks)
        except ValueError as err:
            raise RunError(f"workflow {path.name}: {err}") from err
    set_all(prompt, "SaveOmnimatteLayers", "folder", layer_folder_name(args))
    set_all(prompt, "SaveOmnimatteLayers", "rgba_format", args.rgba_format)
    return prompt


def layer_folder_name(args: argparse.Namespace) -> str:
    """``<clip>-<mask>``: the layout OUT/<clip>-<object>/<layer>/ (the writer numbers a taken one -2, -3 …).

    With several masks, ``<clip>``: the writer adds ``-<mask>`` for each object's folder beside it.
    """
    clip = args.clip_name or args.video.stem
    return clip if len(args.masks) > 1 else f"{clip}-{args.mask.stem}"


def workflow_prompt(path: Path) -> dict:
    """A UI-format workflow file → an API prompt, against the loaded host's node definitions."""
    ui = json.loads(path.read_text())
    definitions = {n["type"]: wf.node_definition(n["type"]) for n in ui["nodes"] if n["type"] not in wf.FRONTEND_ONLY}
    return wf.ui_to_api(ui, definitions)


def toy_models(prompt: dict) -> dict:
    """--toy: the embedded toy world's files and working size; its remover takes no CLIP-H features."""
    from omnimatte_workflows.toy_graph import TOY_FILES, TOY_SIZE

    prompt = wf.without_clip_vision(wf.use_cached_text_embeds(prompt, TOY_FILES["embeds_name"]))
    for (node_type, field) in LOADERS:
        if field in TOY_FILES:
            set_all(prompt, node_type, field, TOY_FILES[field])
    for field in ("width", "height"):  # all of them: frames decoded at 832×480 would be decoded, conditioned
        for node_type in WORKING_SIZE:  # and matted at that size, only the latent shrunk to the toy's
            set_all(prompt, node_type, field, TOY_SIZE)
    log.warning("--toy: running the embedded TOY models (trained on 128×128 procedural clips). The layers show "
                "the plumbing only; real footage needs Casper and trained experts (README 'Model files').")
    return prompt


def set_all(prompt: dict, node_type: str, field: str, value) -> None:
    if value is None:
        return
    for node in prompt.values():
        if node["class_type"] == node_type:
            node["inputs"][field] = value


def _prompt_beside(video: Path) -> str:
    meta = video.parent / "prompt.json"
    if meta.is_file():
        return json.loads(meta.read_text()).get("bg", "")
    return "a video of a beautiful background."
