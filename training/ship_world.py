"""``python -m training.ship_world --out DIR --world ASSEMBLED --runs STAGE=RUN[,RUN...] ... --base WORLD``:
a toy world ready to ship, from one assembled by ``training.assemble_world`` (docs/toy_world.md).

An assembled world records where its files came from but not how they were made. This adds, per stage,
the commands that made the file, oldest first (an expert trained, then annealed, then fine-tuned is three
runs, each a folder with ``command.txt``, ``loss.jsonl`` and ``validation.jsonl``), the seconds of
steps each run took, and the last validation record; stages without ``--runs`` keep their entry in
``--base``'s manifest. The demo clips are written again, or copied with ``--demo-from`` (they depend on
the held-out stream only).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from .build_records import FP32_VAE_PREFIX, parse_new_folder_args, sha256, write_manifest
from .world_files import PACK_DIR, SHIPPED, place_demo_clips, world_header

log = logging.getLogger("training.ship_world")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.ship_world", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the folder to write (must not exist yet)")
    p.add_argument("--world", type=Path, required=True, help="a folder written by training.assemble_world")
    p.add_argument("--base", type=Path, required=True, metavar="WORLD",
                   help="a packaged toy world whose manifest entries serve the stages without --runs")
    p.add_argument("--runs", nargs="+", default=[], metavar="STAGE=RUN[,RUN...]",
                   help="the run folders that made a stage's file, oldest first")
    p.add_argument("--rebuild", default=None, help="how to make the whole world again (recorded)")
    p.add_argument("--demo-from", type=Path, default=None, metavar="WORLD",
                   help="copy the demo clips from this toy world (the same clips; a rewrite changes only bytes)")
    return p


def run_commands(run: Path) -> list[dict]:
    """``command.txt`` → [{command, env, note}] (one per line; text after ``   # `` is the note)."""
    records = []
    for line in (run / "command.txt").read_text().splitlines():
        if not line.strip():
            continue
        command, _, note = line.partition("   # ")
        env = {}
        if command.startswith(FP32_VAE_PREFIX):
            command, env = command[len(FP32_VAE_PREFIX):], {"OMNIMATTE_FP32_VAE": "1"}
        records.append({"command": command.strip(), "env": env, "note": note.strip(), "run": str(run)})
    return records


def step_seconds(run: Path, after_step: int) -> tuple[float, int]:
    """Seconds of the steps past ``after_step`` in the run's ``loss.jsonl`` (a resumed run's log starts with
    its parent's records) and the run's last step."""
    records = [json.loads(line) for line in (run / "loss.jsonl").read_text().splitlines() if line.strip()]
    own = [r for r in records if r["step"] > after_step]
    return round(sum(r["seconds"] for r in own), 1), max(r["step"] for r in records)


def last_validation(run: Path) -> dict | None:
    path = run / "validation.jsonl"
    lines = [line for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    return json.loads(lines[-1]) if lines else None


def lineage(runs: list[Path]) -> dict:
    """A stage made by ``runs`` in turn → its manifest fields: the last command, the earlier ones, seconds."""
    chain, total, last_step = [], 0.0, 0
    for run in runs:
        seconds, last_step_here = step_seconds(run, last_step)
        chain.append({"commands": run_commands(run), "step_seconds": seconds, "to_step": last_step_here})
        total += seconds
        last_step = last_step_here
    final = chain[-1]["commands"][-1]
    return {"command": final["command"], "env": final["env"], "wall_seconds": round(total, 1),
            "wall_seconds_counts": "seconds of training steps, summed over the runs (encoding not counted)",
            "device": "cpu (the 2-core development box)", "metrics": last_validation(runs[-1]),
            "runs": chain}


def run_source(stage: str, assembled_from: Path, last_run: Path) -> str:
    """The stage's file as its last run wrote it (relative to the pack when inside it), so the manifest names
    the committed run folder rather than wherever the world was assembled from; refused when that run did not
    write the file the world was assembled with."""
    written = last_run / assembled_from.name
    if not written.is_file() or sha256(written) != sha256(assembled_from):
        raise SystemExit(f"ship_world: {stage}: {last_run} holds no copy of {assembled_from}; name the runs "
                         f"that made the file the world was assembled with, the last one last")
    written = written.resolve()
    return str(written.relative_to(PACK_DIR)) if written.is_relative_to(PACK_DIR) else str(written)


def parse_runs(items: list[str]) -> dict[str, list[Path]]:
    runs = {}
    for item in items:
        stage, _, folders = item.partition("=")
        if stage not in SHIPPED or not folders:
            raise SystemExit(f"ship_world: --runs {item!r}: write STAGE=RUN[,RUN...] with STAGE one of "
                             f"{', '.join(SHIPPED)}")
        runs[stage] = [Path(f) for f in folders.split(",")]
        missing = [str(r) for r in runs[stage] if not (r / "command.txt").is_file()]
        if missing:
            raise SystemExit(f"ship_world: no command.txt in {', '.join(missing)}")
    return runs


def ship(world: Path, base: Path, runs: dict[str, list[Path]], out: Path, rebuild: str | None,
         demo_from: Path | None = None) -> dict:
    assembled = json.loads((world / "manifest.json").read_text())
    base_files = json.loads((base / "manifest.json").read_text())["files"]
    shutil.copytree(world, out, ignore=shutil.ignore_patterns("manifest.json"))
    entries = {}
    for stage, (folder, name) in SHIPPED.items():
        path = out / folder / name
        entry = {"file": f"{folder}/{name}", "sha256": sha256(path), "bytes": path.stat().st_size,
                 "source": assembled["files"][stage]["source"]}
        if stage in runs:
            entry.update(lineage(runs[stage]), source=run_source(stage, Path(entry["source"]), runs[stage][-1]))
        else:
            kept = base_files[stage]
            if kept["sha256"] != entry["sha256"]:
                raise SystemExit(f"ship_world: {stage} differs from {base}'s; name the runs that made it (--runs)")
            entry.update({k: v for k, v in kept.items() if k not in entry})
        entries[stage] = entry
    entries.update(place_demo_clips(out, demo_from))
    manifest = {"toy_world": world_header(rebuild or "the commands of each stage below, oldest run first"),
                "files": entries, "total_bytes": sum(e["bytes"] for e in entries.values())}
    return write_manifest(out, manifest)


def main(argv: list[str] | None = None) -> None:
    args = parse_new_folder_args(parser(), argv, "ship_world")
    if not (args.world / "manifest.json").is_file() or not json.loads(
            (args.world / "manifest.json").read_text()).get("assembled"):
        raise SystemExit(f"ship_world: {args.world} is not a world written by training.assemble_world")
    runs = parse_runs(args.runs)
    try:
        manifest = ship(args.world, args.base, runs, args.out, args.rebuild, args.demo_from)
    except BaseException:  # a refused stage: leave no half-written world behind
        shutil.rmtree(args.out, ignore_errors=True)
        raise
    log.info("wrote %s (%d bytes)", args.out, manifest["total_bytes"])


if __name__ == "__main__":
    main()
