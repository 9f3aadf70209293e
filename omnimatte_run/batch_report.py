"""What a batch says: the plan before anything loads, the table at the end and OUT/batch_report.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from omnimatte_run.batch_clips import Clip

REPORT_NAME = "batch_report.json"
PLAN = {"to run": "will run", "already done": "done, skipped (--force redoes it)", "refused": "will not run"}


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain columns, left-aligned, one header line."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [headers, *rows]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _size(clip: Clip) -> str:
    return f"{clip.size[0]}×{clip.size[1]}" if clip.size else "-"


def _what(clip: Clip, words: str) -> str:
    return f"{words}: {clip.reason}" if clip.reason else words


def plan_table(clips: list[Clip]) -> str:
    """One line per clip: what will run and what will not, and why."""
    rows = [[c.name, str(len(c.masks)), str(c.frames or "-"), _size(c), _what(c, PLAN[c.status])] for c in clips]
    return table(["clip", "objects", "frames", "size", "plan"], rows)


def final_table(clips: list[Clip]) -> str:
    rows = [[c.name, str(len(c.masks)), str(c.frames or "-"), _size(c),
             f"{c.seconds:.1f}" if c.seconds is not None else "-", _what(c, c.status)] for c in clips]
    return table(["clip", "objects", "frames", "size", "seconds", "status"], rows)


def counts(clips: list[Clip]) -> dict[str, int]:
    found: dict[str, int] = {}
    for clip in clips:
        found[clip.status] = found.get(clip.status, 0) + 1
    return found


def report(args: argparse.Namespace, clips: list[Clip], folders: dict[str, list[str]], seconds: float,
           loaded: bool) -> dict:
    """The JSON behind the table; ``folders``: clip → its layer folders in OUT; ``loaded``: whether ComfyUI and
    the models were loaded (not when every clip was done or refused)."""
    return {
        "batch": str(args.batch), "out": str(args.out.resolve()), "workflow": args.workflow, "toy": bool(args.toy),
        "seconds": round(seconds, 2), "models_loaded": loaded, "counts": counts(clips),
        "failed": sum(c.failed for c in clips),
        "clips": [{"clip": c.name, "status": c.status, "reason": c.reason, "objects": len(c.masks),
                   "frames": c.frames or None, "width": c.size[0] if c.size else None,
                   "height": c.size[1] if c.size else None, "seconds": c.seconds,
                   "cpu_seconds": c.cpu_seconds, "warnings": c.warnings,
                   "folders": folders.get(c.name, [])} for c in clips],
    }


def write(out: Path, data: dict) -> Path:
    """OUT/batch_report.json, written whole (a reader never sees half a report)."""
    path = out / REPORT_NAME
    partial = path.with_name(f".{REPORT_NAME}.partial")
    partial.write_text(json.dumps(data, indent=1) + "\n")
    partial.replace(path)
    return path


def closing_lines(data: dict, path: Path, log_path: Path) -> str:
    found = ", ".join(f"{n} {status}" for status, n in data["counts"].items())
    lines = [f"{len(data['clips'])} clips in {data['seconds']:.1f} s: {found}.", f"Report: {path}",
             f"Layers in {data['out']}; the full log is {log_path}."]
    if data["failed"]:
        lines.insert(1, f"{data['failed']} clip(s) did not finish; the reason is in the table (exit code 2).")
    return "\n".join(lines)
