"""The clips of a ``--batch`` folder: found, checked before any model loads, and their layer folders.

One clip per sub-folder, in Gen-Omnimatte's example layout: ``input_video.mp4`` (or the one video
file there), ``mask_00.mp4``, ``mask_01.mp4`` … (one per object, front first), an optional
``keep_mask*.mp4`` and an optional ``prompt.json`` with ``bg``. A clip is done when every layer
folder it makes exists in OUT: those folders are renamed into place whole (omnimatte_core.staging),
so one that exists is complete.
"""

from __future__ import annotations

import argparse
import glob
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from omnimatte_core import staging, video_files
from omnimatte_run import run_logging
from omnimatte_run.graph_run import GraphRunner, RunError
from omnimatte_run.prompts import SINGLE_OBJECT_WORKFLOWS, layer_folder_name
from omnimatte_run.single_run import check_inputs

log = logging.getLogger("omnimatte.batch")
VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")
REPLACED_MARK = ".replaced-"  # an earlier result set aside while its clip is redone


@dataclass
class Clip:
    """One sub-folder of the batch and what became of it."""

    name: str
    folder: Path
    video: Path | None = None
    masks: list[Path] = field(default_factory=list)
    keep_mask: Path | None = None
    status: str = "to run"  # to run → ran / failed / not run (stopped); or already done, refused
    reason: str = ""
    frames: int = 0
    size: tuple[int, int] | None = None  # source (width, height)
    seconds: float | None = None
    cpu_seconds: float | None = None  # this process's CPU time during the clip (all its threads)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status in ("refused", "failed", "not run")


def discover(batch_dir: Path) -> list[Clip]:
    """Every sub-folder that holds a video, by name; a folder without a mask is refused, naming what to add."""
    if not batch_dir.is_dir():
        raise RunError(f"--batch {batch_dir}: no such folder. Give a folder with one sub-folder per clip.")
    clips = []
    for folder in sorted(p for p in batch_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            log.info("batch: %s holds no video; not a clip", folder)
            continue
        clips.append(_clip_from_files(folder, videos))
    if not clips:
        raise RunError(f"--batch {batch_dir}: no sub-folder holds a video. Put each clip in its own folder: "
                       "<clip>/input_video.mp4 and <clip>/mask_00.mp4 (one mask per object).")
    return clips


def _clip_from_files(folder: Path, videos: list[Path]) -> Clip:
    clip = Clip(folder.name, folder)
    keep = [p for p in videos if _named(p, "keep_mask")]
    clip.masks = [p for p in videos if _named(p, "mask")]
    footage = [p for p in videos if p not in keep and p not in clip.masks]
    named = [p for p in footage if p.stem == "input_video"]
    clip.video = named[0] if named else footage[0] if len(footage) == 1 else None
    clip.keep_mask = keep[0] if len(keep) == 1 else None
    stems = [m.stem for m in clip.masks]
    if clip.video is None:
        clip.reason = (f"{len(footage)} videos ({', '.join(p.name for p in footage)}): name the clip "
                       "input_video.mp4" if footage else "no input video: add input_video.mp4")
    elif not clip.masks:
        clip.reason = "no mask: add mask_00.mp4 (white = the object), one mask_NN.mp4 per object"
    elif len(keep) > 1:
        clip.reason = f"{len(keep)} keep masks: merge them into one keep_mask.mp4"
    elif len(set(stems)) != len(stems):
        clip.reason = f"two masks named {', '.join(stems)}: each object's folder is named after its mask, rename one"
    if clip.reason:
        clip.status = "refused"
    return clip


def _named(path: Path, kind: str) -> bool:
    """``mask.mp4``, ``mask_00.mp4`` … (not ``masked_dance.mp4``)."""
    stem = path.stem.lower()
    return stem == kind or stem.startswith(kind + "_")


def clip_args(args: argparse.Namespace, clip: Clip) -> argparse.Namespace:
    """The single-run arguments for ``clip`` (its files, folders named after the clip)."""
    return argparse.Namespace(**{**vars(args), "video": clip.video, "masks": list(clip.masks), "mask": clip.masks[0],
                                 "keep_mask": clip.keep_mask, "clip_name": clip.name})


def layer_folders(args: argparse.Namespace, clip: Clip) -> list[Path]:
    """The folders a finished run of ``clip`` has in OUT: ``<clip>-<mask>``; with several masks ``<clip>`` and
    ``<clip>-<mask>`` per object (as Save Omnimatte Layers names them)."""
    base = args.out / layer_folder_name(clip_args(args, clip))
    if len(clip.masks) == 1:
        return [base]
    return [base] + [base.with_name(f"{base.name}-{m.stem}") for m in clip.masks]


def is_done(args: argparse.Namespace, clip: Clip) -> bool:
    return all(p.is_dir() and any(p.iterdir()) for p in layer_folders(args, clip))


def check(args: argparse.Namespace, clip: Clip) -> None:
    """The single run's input check on ``clip`` (no model loads): refused with its one-line reason, or sized."""
    if len(clip.masks) > 1 and Path(args.workflow).stem in SINGLE_OBJECT_WORKFLOWS:
        clip.status, clip.reason = "refused", f"{len(clip.masks)} masks, but --workflow {args.workflow} takes one"
        return
    try:
        report = check_inputs(clip_args(args, clip))
    except RunError as err:
        clip.status, clip.reason = "refused", str(err).splitlines()[0]
        return
    clip.warnings = report.warnings
    describe(clip)
    clip.frames = report.frames.get("video", 0)


def describe(clip: Clip) -> None:
    """The clip's source size and frames from its video's header (a done clip is not decoded again)."""
    try:
        header = video_files.probe(str(clip.video))
    except video_files.VideoFileError:
        return
    clip.frames, clip.size = header.declared_frames, (header.width, header.height)


def plan(args: argparse.Namespace, clips: list[Clip]) -> None:
    """Mark each clip already done (skipped unless --force), refused, or to run, before ComfyUI loads."""
    for clip in clips:
        if clip.status == "refused":
            log.warning("clip %s: refused: %s", clip.name, clip.reason)
            continue
        if not args.force and is_done(args, clip):
            clip.status = "already done"
            describe(clip)
            continue
        log.info("clip %s: checking inputs", clip.name)
        check(args, clip)
        if clip.status == "refused":
            log.warning("clip %s: refused: %s", clip.name, clip.reason)


def clear_leftovers(args: argparse.Namespace, clip: Clip) -> None:
    """Remove what a killed run of ``clip`` left (hidden staging or set-aside folders): one worker runs a clip
    at a time, so any such folder of its own layer folders belongs to a run that is gone."""
    for target in layer_folders(args, clip):
        pattern = f".{glob.escape(target.name)}"
        for remains in [*target.parent.glob(pattern + staging.PARTIAL_MARK + "*"),
                        *target.parent.glob(pattern + REPLACED_MARK + "*")]:
            if remains != staging.staging_folder(target):
                log.info("clip %s: removing %s, left by a run that stopped part-way", clip.name, remains.name)
                shutil.rmtree(remains, ignore_errors=True)


def set_aside(args: argparse.Namespace, clip: Clip) -> list[tuple[Path, Path]]:
    """Move the clip's existing layer folders (--force, or a run killed between renames) out of the way, so the
    new run writes the same names and never mixes with them; → (hidden, original) pairs to drop or restore."""
    moved = []
    for target in layer_folders(args, clip):
        if target.exists():
            hidden = target.with_name(f".{target.name}{REPLACED_MARK}{os.getpid()}")
            os.rename(target, hidden)
            moved.append((hidden, target))
    return moved


def finish_aside(moved: list[tuple[Path, Path]], succeeded: bool) -> None:
    """After the clip's run: drop the old folders (it succeeded) or put them back (it failed)."""
    for hidden, target in moved:
        if succeeded:
            shutil.rmtree(hidden, ignore_errors=True)
        elif not target.exists():
            os.rename(hidden, target)


def run_clip(args: argparse.Namespace, clip: Clip, runner: GraphRunner) -> None:
    """Run one clip (its status, seconds and reason set here); never raises for the clip's own failure."""
    from omnimatte_run.single_run import run_on_files

    clear_leftovers(args, clip)
    moved = set_aside(args, clip)
    started, cpu_started = time.monotonic(), time.process_time()
    succeeded = False
    try:
        run_on_files(clip_args(args, clip), runner)
        clip.status, succeeded = "ran", True
    except RunError as err:
        clip.status, clip.reason = "failed", first_line(err)
        log.error("clip %s failed: %s", clip.name, err)
    except Exception as err:  # noqa: BLE001 - one bad clip never stops the batch; the traceback goes to the log
        logging.getLogger("omnimatte.crash").error(run_logging.CRASH_MARKER, exc_info=True)
        log.error("clip %s failed unexpectedly: %s (traceback in the log)", clip.name, err)
        clip.status, clip.reason = "failed", f"{type(err).__name__}: {first_line(err)}"
    finally:
        clip.seconds = round(time.monotonic() - started, 2)
        clip.cpu_seconds = round(time.process_time() - cpu_started, 2)
        finish_aside(moved, succeeded)


def first_line(err: BaseException) -> str:
    """The one-line reason in the table (the whole message is in the log)."""
    return (str(err).strip().splitlines() or [""])[0]
