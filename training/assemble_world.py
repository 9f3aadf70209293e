"""``python -m training.assemble_world --out DIR --from WORLD [--vae F] [--text F] [--remover F] [--effect F]
[--quality F] [--block-scores F]``: a toy-world folder from parts trained separately (docs/toy_world.md).

Every part not named is taken from ``--from`` (a folder laid out like the pack's ``toy_world/``, such as
``toy_world_build/world_k3_8k``); experts go through ``training.world_files.ship_expert``, which refuses one
trained on another remover. The result is what ``benchmarks.toy_table --toy-world DIR`` measures, so a
build is measured through the shipped path before anyone ships it. ``DIR/manifest.json`` records each
file's hash and where it came from; no demo clips are written (the table does not use them).
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from .build_records import parse_new_folder_args, write_manifest
from .world_files import SHIPPED, place_stage

log = logging.getLogger("training.assemble_world")
BLOCK_SCORES = "block_scores.json"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.assemble_world", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the folder to write (must not exist yet)")
    p.add_argument("--from", dest="base", type=Path, required=True, metavar="WORLD",
                   help="a toy-world folder that supplies every part not named below")
    for stage in SHIPPED:
        p.add_argument(f"--{stage}", type=Path, default=None, metavar="FILE", help=f"the {stage} file to use")
    p.add_argument("--block-scores", type=Path, default=None, metavar="FILE",
                   help="training.analyze_blocks' block_scores.json for this remover")
    return p


def chosen_parts(args: argparse.Namespace) -> tuple[dict[str, Path], Path]:
    """Each stage's source file (named, else the base world's) and the block scores; exits naming a missing one."""
    parts = {stage: getattr(args, stage) or args.base / folder / name for stage, (folder, name) in SHIPPED.items()}
    scores = args.block_scores or args.base / BLOCK_SCORES
    missing = [f"{stage}: {path}" for stage, path in {**parts, "block scores": scores}.items() if not path.is_file()]
    if missing:
        raise SystemExit("assemble_world: missing " + "; ".join(missing) + ". Name the file or fix --from")
    return parts, scores


def assemble(parts: dict[str, Path], scores: Path, out: Path) -> dict:
    """Write the toy world ``out`` from ``parts`` (stage → file) → its manifest."""
    out.mkdir(parents=True)
    try:
        files = {stage: {**place_stage(stage, path, out, parts["remover"]), "source": str(path)}
                 for stage, path in parts.items()}
    except BaseException:  # an expert of another remover: leave no half-written world behind
        shutil.rmtree(out)
        raise
    shutil.copyfile(scores, out / BLOCK_SCORES)
    manifest = {"assembled": True, "block_scores_source": str(scores), "files": files,
                "total_bytes": sum(entry["bytes"] for entry in files.values())}
    return write_manifest(out, manifest)


def main(argv: list[str] | None = None) -> None:
    args = parse_new_folder_args(parser(), argv, "assemble_world")
    parts, scores = chosen_parts(args)
    manifest = assemble(parts, scores, args.out)
    log.info("assembled %s (%d bytes) from %s", args.out, manifest["total_bytes"],
             ", ".join(f"{stage}={path}" for stage, path in parts.items()))


if __name__ == "__main__":
    main()
