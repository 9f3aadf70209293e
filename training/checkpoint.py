"""Resumable training state: LoRA factors + AdamW moments in ``.safetensors``, the rest in JSON.

``DIR/step_000500.safetensors`` holds ``param.{i}``, ``adam.{i}.exp_avg``, ``adam.{i}.exp_avg_sq``
and ``adam.{i}.step``; ``DIR/step_000500.json`` holds the step, parameter names, optimizer
hyper-parameters and the run's settings. No pickle anywhere.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)
ADAM_KEYS = ("exp_avg", "exp_avg_sq", "step")
RUN_LOGS = ("loss.jsonl", "validation.jsonl")  # each trainer's logs, beside its checkpoints/ folder


def checkpoint_path(directory: Path, step: int) -> Path:
    return directory / f"step_{step:06d}.safetensors"


def save_checkpoint(directory: Path, step: int, params: list[torch.Tensor], names: list[str],
                    optimizer: torch.optim.Optimizer, settings: dict, keep: int = 3) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {f"param.{i}": p.detach().float().cpu().contiguous() for i, p in enumerate(params)}
    state = optimizer.state_dict()
    for i, moments in state["state"].items():
        for key in ADAM_KEYS:
            if key in moments:
                value = moments[key]
                value = value if torch.is_tensor(value) else torch.tensor(float(value))
                tensors[f"adam.{i}.{key}"] = value.detach().float().cpu().contiguous().reshape(value.shape)
    groups = [{k: v for k, v in g.items() if k != "params"} | {"params": list(g["params"])} for g in state["param_groups"]]
    path = checkpoint_path(directory, step)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), {"step": str(step)})
    os.replace(tmp, path)
    side = {"step": step, "names": names, "param_groups": groups, "settings": settings}
    path.with_suffix(".json").write_text(json.dumps(side, indent=1, sort_keys=True, default=str))
    for old in sorted(directory.glob("step_*.safetensors"))[:-keep] if keep > 0 else []:
        old.unlink()
        old.with_suffix(".json").unlink(missing_ok=True)
    return path


def latest_checkpoint(directory: Path) -> Path | None:
    found = [p for p in sorted(directory.glob("step_*.safetensors")) if p.with_suffix(".json").is_file()]
    return found[-1] if found else None


def load_checkpoint(path: Path, params: list[torch.nn.Parameter], names: list[str],
                    optimizer: torch.optim.Optimizer) -> dict:
    """Copy the saved factors into ``params`` and restore the optimizer; returns the JSON side."""
    side = json.loads(path.with_suffix(".json").read_text())
    tensors = load_file(str(path))
    saved_shapes = [tuple(tensors[f"param.{i}"].shape) for i in range(len(side["names"]))]
    if side["names"] != names or saved_shapes != [tuple(p.shape) for p in params]:
        raise ValueError(f"{path.name} was written for other LoRA factors ({len(side['names'])} tensors, first "
                         f"{side['names'][:1]} {saved_shapes[:1]}) than this run has ({len(names)}, first {names[:1]} "
                         f"{[tuple(p.shape) for p in params[:1]]}). Resume with the same --role, --rank and --last-k, "
                         "or start a new --output folder")
    with torch.no_grad():
        for i, p in enumerate(params):
            p.copy_(tensors[f"param.{i}"].to(p.device, p.dtype))
    state = {}
    for i, p in enumerate(params):
        if f"adam.{i}.exp_avg" in tensors:
            state[i] = {k: tensors[f"adam.{i}.{k}"].to(p.device if k != "step" else "cpu") for k in ADAM_KEYS}
    optimizer.load_state_dict({"state": state, "param_groups": side["param_groups"]})
    log.info("resumed from %s (step %d)", path, side["step"])
    return side


def resume_step(directory: Path, params: list[torch.nn.Parameter], names: list[str],
                optimizer: torch.optim.Optimizer) -> int:
    """``--resume``: restore the newest checkpoint in ``directory``; the step to continue from."""
    latest = latest_checkpoint(directory)
    if latest is None:
        raise SystemExit(f"--resume: no checkpoint in {directory}; start without --resume")
    step = load_checkpoint(latest, params, names, optimizer)["step"]
    forget_records_after(directory.parent, step)
    return step


def forget_records_after(run: Path, step: int) -> None:
    """Drop the records past ``step`` from the run's logs: a run stopped between checkpoints logged
    steps that the resumed run takes again, and each step should appear once in its curves."""
    for name in RUN_LOGS:
        path = run / name
        if not path.is_file():
            continue
        lines = path.read_text().splitlines()
        kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
        if len(kept) < len(lines):
            log.info("%s: dropped %d records past the resumed step %d", path, len(lines) - len(kept), step)
            part = path.with_name(path.name + ".part")
            part.write_text("".join(line + "\n" for line in kept))
            part.replace(path)


def append_jsonl(path: Path, record: dict) -> None:
    """One JSON record per line (loss and validation logs)."""
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
