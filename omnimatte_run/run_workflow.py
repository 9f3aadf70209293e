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
import sys
from pathlib import Path

from omnimatte_host import comfy_host
from omnimatte_run import model_check
from omnimatte_run import run_logging
from omnimatte_run import run_summary
from omnimatte_run.graph_run import RunError
from omnimatte_run.prompts import MODEL_FLAGS, NEEDS_NEW_BACKGROUND, SETTINGS, SINGLE_OBJECT_WORKFLOWS
from omnimatte_run.single_run import check_inputs, load_host, run_on_files

log = logging.getLogger("omnimatte.run")


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


def run(args: argparse.Namespace) -> dict:
    load_host(args)
    if args.demo:
        from omnimatte_run import toy_demo

        return toy_demo.run_demo(args)
    return run_on_files(args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warnings = run_summary.WarningCounter()
    log_path = run_logging.setup(args.out, args.verbose, warnings)
    path = comfy_host.find_comfyui()
    if path is None:
        log.error(comfy_host.NO_HOST_MESSAGE)
        return 3
    if comfy_host.version_problem(path):
        log.error(comfy_host.version_problem(path))
        return 3
    if args.batch is not None:
        from omnimatte_run import batch

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
