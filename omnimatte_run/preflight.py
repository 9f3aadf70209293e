"""The runner's input check, before ComfyUI or any model loads: broken files and suspicious masks.

Every file is opened and decoded once with PyAV (counting frames, keeping 16 small ones): a file
that does not decode, or decodes fewer frames than its container declares, is an error naming
its role ("input video", "object mask"); masks and footage that look swapped, inverted or all
white are warnings, which ``--strict`` turns into errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from omnimatte_core import input_checks, video_files

log = logging.getLogger("omnimatte.preflight")
ROLES = {"video": "input video", "mask": "object mask", "keep_mask": "keep mask",
         "new_background": "new background video"}


class InputError(ValueError):
    """An input file the run cannot use; the message names the file, its role and the fix."""


@dataclass
class Report:
    frames: dict[str, int] = field(default_factory=dict)  # role → frames decoded
    warnings: list[str] = field(default_factory=list)


def role_name(role: str) -> str:
    """``mask`` → "object mask"; ``mask:dog`` (one of several) → "object mask dog"."""
    base, _, label = role.partition(":")
    return f"{ROLES[base]} {label}" if label else ROLES[base]


def check_file(role: str, path: Path, allow_truncated: bool) -> video_files.FrameSample:
    """Decode ``path`` once; raise InputError when it is not a usable video."""
    name = role_name(role).capitalize()
    if not path.is_file():
        raise InputError(f"{name}: no file at {path}")
    try:
        header = video_files.probe(str(path))
        sample = video_files.sample_frames(str(path))
    except video_files.VideoFileError as err:
        raise InputError(f"{name} {path} {err}. Check that it is the right file and that it was fully "
                         "copied or downloaded.") from err
    short = video_files.check_frame_count(sample.decoded, header.declared_frames, allow_truncated,
                                          "pass --allow-truncated")
    if short and not allow_truncated:
        raise InputError(f"{name} {path}: {short}")
    if short:
        log.warning("%s %s: %s", name, path, short)
    return sample


def check_inputs(paths: dict[str, Path], allow_truncated: bool = False) -> Report:
    """paths: role (``ROLES``; ``mask:<name>`` for one of several masks) → file. → frame counts and warnings;
    raises InputError for broken files."""
    report = Report()
    samples = {}
    for role, path in paths.items():
        samples[role] = check_file(role, path, allow_truncated)
        report.frames[role] = samples[role].decoded
    if "video" in samples:
        report.warnings += input_checks.video_warnings(samples["video"].frames)
    masks = [role for role in samples if role.partition(":")[0] in ("mask", "keep_mask")]
    for role in masks:
        report.warnings += input_checks.mask_warnings(samples[role].frames, role_name(role))
    for role in masks:
        if "video" in samples and samples[role].decoded not in (1, report.frames["video"]):
            raise InputError(f"{role_name(role)} {paths[role]} has {samples[role].decoded} frames but the input video "
                             f"has {report.frames['video']}: give a mask with one frame per video frame (the same "
                             "frame range), or a single frame for all.")
    return report
