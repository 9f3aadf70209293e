"""One clip through a workflow in this process: its inputs checked first, then linked into ComfyUI's
input folder, the prompt built, the model files checked from their headers, the graph run."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from omnimatte_host import comfy_host
from omnimatte_run import model_check
from omnimatte_run.graph_run import GraphRunner, RunError
from omnimatte_run.prompts import OBJECT_MASK_TITLE, build_prompt
from omnimatte_workflows import workflow_format as wf

if TYPE_CHECKING:
    from omnimatte_run import preflight

log = logging.getLogger("omnimatte.run")


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
    from omnimatte_run import preflight

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
