"""The effect-weighted fine-tune's run folder (``training.toy_world --finetune-steps``): a copy of an expert
run's last checkpoint and logs, so ``training.train --resume`` continues from there in a folder of its own
while the expert's run stays as it finished."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from . import checkpoint

STARTED_FROM = "started_from.json"  # the checkpoint the fine-tune was made from, and its step


def seed_finetune_run(work: Path, role: str) -> Path:
    """``work/<role>_finetune``, made once from ``work/<role>``'s last checkpoint (weights, optimiser state,
    logs); the step it starts at is kept in ``started_from.json``, since the fine-tune runs past it."""
    run = work / f"{role}_finetune"
    if run.is_dir():
        return run
    start = checkpoint.latest_checkpoint(work / role / "checkpoints")
    if start is None:
        raise SystemExit(f"the {role} expert's run {work / role} has no checkpoint to fine-tune from")
    seed = work / f"{role}_finetune.partial"  # renamed when whole: a copy cut short is never resumed
    shutil.rmtree(seed, ignore_errors=True)
    (seed / "checkpoints").mkdir(parents=True)
    for part in start.parent.glob(f"{start.stem}.*"):  # the weights and their .json
        shutil.copyfile(part, seed / "checkpoints" / part.name)
    for log_name in checkpoint.RUN_LOGS:
        if (work / role / log_name).is_file():
            shutil.copyfile(work / role / log_name, seed / log_name)
    step = int(json.loads(start.with_suffix(".json").read_text())["step"])
    (seed / STARTED_FROM).write_text(json.dumps({"checkpoint": str(start), "step": step}))
    seed.replace(run)
    return run


def finetune_start_step(run: Path, unrecorded: int) -> int:
    """The step the fine-tune in ``run`` started from; ``unrecorded`` for a folder made before it was kept."""
    record = run / STARTED_FROM
    return int(json.loads(record.read_text())["step"]) if record.is_file() else unrecorded
