"""``run.sh --batch DIR --out OUT``: every clip of a folder through one workflow in one ComfyUI process.

Every clip is checked first (no model loads for that), and one table says what will run and what
will not. Then ComfyUI loads once and one executor runs the clips one after another: its cache
keeps the loader nodes' outputs, so the models load for the first clip only. A clip that fails is
reported with its one-line reason and the batch goes on; the exit code is 2 when any clip was
refused or failed. A clip whose layer folders are all in OUT is skipped on the next run
(``--force`` redoes it), so a batch that was stopped continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from omnimatte_host import comfy_host
from omnimatte_run import batch_clips
from omnimatte_run import batch_report
from omnimatte_run.batch_clips import Clip, first_line, run_clip
from omnimatte_run.graph_run import GraphRunner, RunError

log = logging.getLogger("omnimatte.batch")
EXIT_FAILED, EXIT_INTERRUPTED = 2, 130


def run_local(args: argparse.Namespace, clips: list[Clip], comfy_path: Path) -> None:
    """The clips to run, one after another in this process with the models loaded once."""
    from omnimatte_run.single_run import load_host

    todo = [c for c in clips if c.status == "to run"]
    comfy_host.import_comfy(comfy_path, args.threads)
    load_host(args)
    runner = GraphRunner()
    for number, clip in enumerate(todo, 1):
        log.info("[%d/%d] clip %s: %d object(s), %d frames at %s", number, len(todo), clip.name, len(clip.masks),
                 clip.frames, "×".join(map(str, clip.size or ())))
        run_clip(args, clip, runner)
        log.info("[%d/%d] clip %s: %s in %.1f s", number, len(todo), clip.name, clip.status, clip.seconds)


def main(args: argparse.Namespace, comfy_path: Path, log_path: Path) -> int:
    """The batch from the runner's arguments; → the exit code."""
    started = time.monotonic()
    try:
        if args.ray:
            from omnimatte_run import batch_ray

            batch_ray.import_ray()  # missing: said before any clip is checked
        clips = batch_clips.discover(args.batch)
    except RunError as err:
        log.error("%s", err)
        return EXIT_FAILED
    batch_clips.plan(args, clips)
    log.info("batch %s → %s:\n%s", args.batch, args.out, batch_report.plan_table(clips))
    interrupted, loaded = False, any(c.status == "to run" for c in clips)
    try:
        if loaded and args.ray:
            batch_ray.run(args, clips, comfy_path)
        elif loaded:
            run_local(args, clips, comfy_path)
    except (KeyboardInterrupt, RunError) as err:  # Ctrl-C, or a cluster that cannot be reached
        interrupted = isinstance(err, KeyboardInterrupt)
        if not interrupted:
            log.error("%s", err)
        for clip in clips:
            if clip.status == "to run":
                clip.status, clip.reason = "not run", "the batch was interrupted" if interrupted else first_line(err)
    folders = {c.name: [p.name for p in batch_clips.layer_folders(args, c)] for c in clips
               if c.status in ("ran", "already done")}
    data = batch_report.report(args, clips, folders, time.monotonic() - started, loaded)
    path = batch_report.write(args.out, data)
    if args.json:
        print(json.dumps(data))
    else:
        print(batch_report.final_table(clips))
        print(batch_report.closing_lines(data, path, log_path))
    sys.stdout.flush()
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if data["failed"] else 0
