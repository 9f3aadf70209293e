"""Layer folders appear whole or not at all.

A run writes every layer folder under a hidden sibling (``.<name>.partial-<pid>``) and renames it
into place only when every file of every pass is closed. A run killed at any moment (SIGKILL, power)
leaves at most a hidden ``.partial`` folder, which no reader takes for layers; an error or an
interrupt removes the staging folders. The next run names any leftovers it finds.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
PARTIAL_MARK = ".partial-"


def staging_folder(target: Path) -> Path:
    """The hidden sibling a run of this process writes ``target`` into."""
    return target.with_name(f".{target.name}{PARTIAL_MARK}{os.getpid()}")


def leftovers(parent: Path) -> list[Path]:
    """Staging folders under ``parent`` whose process is gone (killed runs' remains). Another live process's
    (a second batch worker writing into the same folder) is not one; one on another machine cannot be told."""
    if not parent.is_dir():
        return []
    return sorted(p for p in parent.glob(f".*{PARTIAL_MARK}*") if p.is_dir() and not _owner_alive(p))


def _owner_alive(stage: Path) -> bool:
    import psutil  # ComfyUI's own requirement

    pid = stage.name.rpartition(PARTIAL_MARK)[2]
    return pid.isdigit() and (int(pid) == os.getpid() or psutil.pid_exists(int(pid)))


@contextmanager
def staged(targets: list[Path]) -> Iterator[list[Path]]:
    """Yield one staging folder per target; on success move each into place, on any failure or
    interrupt (BaseException) remove them all, so nothing partial is left looking complete."""
    stages = [staging_folder(t) for t in targets]
    for stage in stages:
        shutil.rmtree(stage, ignore_errors=True)  # this process's own earlier remains
    try:
        yield stages
    except BaseException:
        _remove(stages)
        raise
    publish(stages, targets)


def publish(stages: list[Path], targets: list[Path]) -> None:
    """Rename each written staging folder onto its target (which must be missing or empty); if one
    rename fails, the ones already made are taken back too, so a run lands whole or not at all."""
    done: list[Path] = []
    try:
        for stage, target in zip(stages, targets):
            if not stage.exists():
                continue
            if target.exists():
                target.rmdir()  # empty when the run chose it; an OSError here means another run wrote there since
            os.rename(stage, target)
            done.append(target)
    except BaseException:
        _remove(stages + done)
        raise


def _remove(folders: list[Path]) -> None:
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def moved(files: dict[str, list[Path]], stage: Path, target: Path) -> dict[str, list[Path]]:
    """The paths of ``files`` (written under ``stage``) after the stage became ``target``."""
    return {name: [target / p.relative_to(stage) for p in paths] for name, paths in files.items()}
