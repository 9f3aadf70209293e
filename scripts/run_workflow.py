"""Headless runner: one of the pack's workflows on a video and mask, no browser.

    bash scripts/run.sh --video clip.mp4 --mask mask_00.mp4 --out layers/
    bash scripts/run.sh                      # the embedded toy world on a bundled demo clip
    bash scripts/run.sh --toy --video clip.mp4 --mask mask.mp4   # toy models on your clip (plumbing only)
    bash scripts/run.sh --batch clips/ --out layers/   # every sub-folder of clips/, models loaded once

It loads ComfyUI in-process, turns ``workflows/<name>.json`` into a prompt, substitutes the
inputs, model names and settings, checks that every model file exists (and says where each
one goes when not), runs the graph with progress in the log, and writes the layers to --out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from scripts import comfy_host, model_check, run_logging, run_summary
from scripts.graph_run import LOADERS, GraphRunner, RunError
from scripts import workflow_format as wf

if TYPE_CHECKING:
    from scripts import preflight

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="run_workflow", description=__doc__.split("\n\n")[0])
    p.add_argument("--workflow", default="decompose_layers",
                   help="a name in workflows/ (decompose_layers, remove_object, replace_background) or a path")
    p.add_argument("--video", type=Path, help="the clip to decompose (none: the toy-world demo)")
    p.add_argument("--mask", type=Path, action="append",
                   help="object mask video, white = object. Give it once per object (front layer first): each "
                        "object gets OUT/<clip>-<mask>/, and OUT/<clip>/ holds all of them and the clean plate")
    p.add_argument("--keep-mask", type=Path, help="mask video of other objects to keep untouched (white = keep)")
    p.add_argument("--new-background", type=Path, help="new background video (replace_background)")
    p.add_argument("--out", type=Path, default=Path("omnimatte-out"),
                   help="folder the layers are written to (default ./omnimatte-out); each run writes "
                        "OUT/<clip>-<mask>/<layer>/, numbered -2, -3 … when that folder is taken")
    p.add_argument("--toy", action="store_true",
                   help="use the embedded toy models on --video/--mask (to try the plumbing; results are toys)")
    p.add_argument("--toy-clip", default=None, help="bundled demo clip for the toy demo (toy_world/demo/)")
    p.add_argument("--prompt", help="background description; default: prompt.json['bg'] beside the video")
    p.add_argument("--text-embeds", help="use this models/omnimatte_text_embeds file instead of the umt5 encoder")
    p.add_argument("--extra-model-paths", type=Path, help="an extra_model_paths.yaml (as ComfyUI's flag)")
    p.add_argument("--lora", type=model_check.lora_arg, action="append", metavar="NAME[:STRENGTH]",
                   help="a models/loras/ file on the transformer (repeatable; strength 1.0 unless given)")
    for flag in MODEL_FLAGS:
        p.add_argument(f"--{flag.replace('_', '-')}", help=f"file name for {MODEL_FLAGS[flag][0]}")
    for name in SETTINGS:
        kind = float if name in ("tau", "cfg", "mask_threshold") else int
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, help=f"{'/'.join(SETTINGS[name])} {name}")
    p.add_argument("--rgba-format", choices=("png8", "png16", "prores4444", "webm_vp9"), default=None,
                   help="how rgba/ is written: 8-bit PNGs (default), 16-bit PNGs, ProRes 4444 .mov or VP9 .webm "
                        "(lossy, for web players), all with straight alpha")
    p.add_argument("--strict", action="store_true",
                   help="stop on input warnings (a mask that looks inverted, all white or swapped with the video)")
    p.add_argument("--allow-truncated", action="store_true",
                   help="use the frames that decode from a file that declares more (a cut-off file)")
    p.add_argument("--verbose", action="store_true",
                   help="show ComfyUI's own log and full tracebacks here (they always go to OUT/omnimatte-run.log)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--json", action="store_true",
                   help="print the result as one JSON object (files, seconds, folder) instead of a summary")
    p.add_argument("--batch", type=Path, help="a folder of clips, one per sub-folder (input_video.mp4, mask_00.mp4, "
                   "mask_01.mp4 …, optional keep_mask.mp4 and prompt.json), run with the models loaded once")
    p.add_argument("--force", action="store_true", help="--batch: redo clips whose layer folders are complete")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS", help="--batch on Ray workers: a local "
                   "cluster, or the cluster at ADDRESS (needs `pip install \"ray[default]\"`)")
    p.add_argument("--workers", type=int, help="--ray: how many workers (default: one per GPU; 1 without GPUs)")
    args = p.parse_args(argv)
    args.clip_name = None  # a batch names each clip's folders after its sub-folder
    if args.batch is not None and (args.video or args.mask or args.keep_mask or args.toy_clip):
        p.error("--batch takes each clip's video and masks from its sub-folder; drop --video, --mask, --keep-mask "
                "and --toy-clip")
    if (args.force or args.ray or args.workers) and args.batch is None:
        p.error("--force, --ray and --workers are for --batch (a single run always writes a new folder)")
    args.masks = args.mask or []
    stems = [m.stem for m in args.masks]
    if len(set(stems)) != len(stems):
        p.error(f"two --mask files have the same name ({', '.join(stems)}); each object's folder is named after "
                "its mask file, so rename one")
    if len(args.masks) > 1 and Path(args.workflow).stem in SINGLE_OBJECT_WORKFLOWS:
        p.error(f"--workflow {Path(args.workflow).stem} takes one object; give one --mask")
    args.mask = args.masks[0] if args.masks else None
    if (args.video is None) != (args.mask is None):
        p.error("give both --video and --mask (or neither, for the toy-world demo)")
    args.demo = args.video is None and args.batch is None
    if args.demo and (args.toy or args.new_background or args.keep_mask):
        p.error("--toy, --keep-mask and --new-background need --video and --mask; without them the toy-world "
                "demo runs")
    workflow = Path(args.workflow).stem
    if not args.demo and (workflow == NEEDS_NEW_BACKGROUND) != (args.new_background is not None):
        p.error(f"--workflow {NEEDS_NEW_BACKGROUND} needs --new-background PATH (the video to put behind the "
                "object)" if args.new_background is None else
                f"--new-background is used by --workflow {NEEDS_NEW_BACKGROUND} only; add that flag or drop it")
    for name in ("video", "mask", "keep_mask", "new_background", "out", "extra_model_paths", "batch"):
        setattr(args, name, caller_path(getattr(args, name)))
    args.masks = [caller_path(m) for m in args.masks]
    if args.workflow.endswith(".json"):
        args.workflow = str(caller_path(Path(args.workflow)))
    return args


def caller_path(path: Path | None) -> Path | None:
    """A path from the command line, relative to where the user ran the command (run.sh changes folder)."""
    if path is None:
        return None
    path = path.expanduser()
    if path.is_absolute():
        return path
    return Path(os.environ.get("OMNIMATTE_CALLER_DIR", os.getcwd())) / path


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
        _set_all(prompt, node_type, field, getattr(args, flag))
    model_check.add_loras(prompt, args.lora or [])
    for name, node_types in SETTINGS.items():
        for node_type in node_types:
            _set_all(prompt, node_type, name, getattr(args, name))
    if wf.KEEP_MASK_TITLE in input_names:
        wf.add_keep_mask(prompt, input_names[wf.KEEP_MASK_TITLE])
    if masks:
        try:
            wf.use_object_masks(prompt, masks)
        except ValueError as err:
            raise RunError(f"workflow {path.name}: {err}") from err
    _set_all(prompt, "SaveOmnimatteLayers", "folder", layer_folder_name(args))
    _set_all(prompt, "SaveOmnimatteLayers", "rgba_format", args.rgba_format)
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
    from scripts.build_workflows import TOY_FILES, TOY_SIZE

    prompt = wf.without_clip_vision(wf.use_cached_text_embeds(prompt, TOY_FILES["embeds_name"]))
    for (node_type, field) in LOADERS:
        if field in TOY_FILES:
            _set_all(prompt, node_type, field, TOY_FILES[field])
    for field in ("width", "height"):  # all of them: frames decoded at 832×480 would be decoded, conditioned
        for node_type in WORKING_SIZE:  # and matted at that size, only the latent shrunk to the toy's
            _set_all(prompt, node_type, field, TOY_SIZE)
    log.warning("--toy: running the embedded TOY models (trained on 128×128 procedural clips). The layers show "
                "the plumbing only; real footage needs Casper and trained experts (README 'Model files').")
    return prompt


def _set_all(prompt: dict, node_type: str, field: str, value) -> None:
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


def run(args: argparse.Namespace) -> dict:
    load_host(args)
    if args.demo:
        from scripts import toy_demo

        return toy_demo.run_demo(args)
    return run_on_files(args)


def load_host(args: argparse.Namespace) -> None:
    """ComfyUI's nodes and this pack, and the user's extra model paths (once per process)."""
    if args.extra_model_paths:
        from utils.extra_config import load_extra_path_config

        load_extra_path_config(str(args.extra_model_paths))
    comfy_host.load_nodes_with_pack()


def run_on_files(args: argparse.Namespace, runner: GraphRunner | None = None) -> dict:
    """One clip through the workflow; a batch passes its ``runner`` (models stay loaded between clips)."""
    import folder_paths

    inputs = {"Input video": args.video}
    if len(args.masks) > 1:
        inputs.update({f"{OBJECT_MASK_TITLE}:{m.stem}": m for m in args.masks})
    else:
        inputs[OBJECT_MASK_TITLE] = args.mask
    if args.keep_mask:
        inputs[wf.KEEP_MASK_TITLE] = args.keep_mask
    if args.new_background:
        inputs["New background video"] = args.new_background
    with tempfile.TemporaryDirectory(prefix="omnimatte-input-") as input_dir:
        names = {}
        for title, path in inputs.items():
            names[title] = f"{args.clip_name or ''}{len(names)}_{path.name}"  # unique across a batch's clips
            _link_or_copy(path, Path(input_dir) / names[title])
        folder_paths.set_input_directory(input_dir)
        prompt = build_prompt(args, names)
        if not args.toy:  # the transformer and LoRAs from their headers, before anything loads
            model_check.check_for_run(prompt, RunError)
        return (runner or GraphRunner()).execute(prompt, args.out)


def _link_or_copy(source: Path, target: Path) -> None:
    """Inputs reach ComfyUI's input folder as hard links (no copy of a large clip), or copies across file
    systems (ComfyUI refuses symlinks that point outside its input folder)."""
    try:
        os.link(source.resolve(), target)
    except OSError:
        shutil.copy(source, target)


def check_inputs(args: argparse.Namespace) -> preflight.Report:
    """Broken files are errors and suspicious inputs warnings (errors with --strict), before anything loads."""
    from scripts import preflight

    paths = {role: getattr(args, role) for role in preflight.ROLES if getattr(args, role) is not None}
    if len(args.masks) > 1:
        del paths["mask"]
        paths.update({f"mask:{m.stem}": m for m in args.masks})
    try:
        report = preflight.check_inputs(paths, args.allow_truncated)
    except preflight.InputError as err:
        raise RunError(str(err)) from err
    for warning in report.warnings:
        log.warning("input check: %s", warning)
    if report.warnings and args.strict:
        raise RunError(f"--strict: stopping on {len(report.warnings)} input warning(s) above. Fix the inputs, "
                       "or run without --strict if they are what you meant.")
    log.info("inputs: %s", ", ".join(f"{preflight.role_name(r)} {n} frames" for r, n in report.frames.items()))
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings = run_summary.WarningCounter()
    log_path = run_logging.setup(args.out, args.verbose, warnings)
    path = comfy_host.find_comfyui()
    if path is None:
        log.error(comfy_host.NO_HOST_MESSAGE)
        return 3
    if args.batch is not None:
        from scripts import batch

        return batch.main(args, path, log_path)
    try:
        if not args.demo:
            check_inputs(args)
        comfy_host.import_comfy(path, args.threads)
        result = run(args)
    except RunError as err:
        log.error("%s\n(details in %s)", err, log_path)
        return 2
    except Exception:
        if args.verbose:
            raise
        logging.getLogger("omnimatte.crash").error(run_logging.CRASH_MARKER, exc_info=True)
        log.error("the run failed unexpectedly: %s. The traceback is in %s (or rerun with --verbose).",
                  sys.exc_info()[1], log_path)
        return 1
    print(json.dumps(result) if args.json else run_summary.summary(result, args.out, warnings.count, log_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
