"""What a build records about each stage so that one command repeats it: the fine-tune chain of a VAE,
the fixed step count of a time-budgeted run, the device, file hashes and the last validation metrics."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

FP32_VAE_PREFIX = "OMNIMATTE_FP32_VAE=1 "  # the CPU builds' VAE precision, written before a recorded command


def vae_ancestry(run: Path) -> list[str]:
    """The commands of the runs a VAE run was fine-tuned from (``--init-from``), oldest first, so the
    manifest repeats the whole chain; [] for a run trained from its own start."""
    chain: list[str] = []
    words = shlex.split((run / "command.txt").read_text()) if (run / "command.txt").is_file() else []
    while "--init-from" in words:
        parent = Path(words[words.index("--init-from") + 1]).parent
        if not (parent / "command.txt").is_file():
            chain.insert(0, f"(unrecorded run that wrote {parent})")
            break
        command = (parent / "command.txt").read_text().strip()
        chain.insert(0, command)
        words = shlex.split(command)
    return chain


def with_fixed_steps(command: str, steps: int) -> str:
    """A run fitted to a time budget → the command that repeats it: ``--iterations`` set, no budget."""
    words, out, skip = shlex.split(command), [], False
    for i, word in enumerate(words):
        if skip:
            skip = False
        elif word in ("--time-budget", "--iterations"):
            skip = True
        else:
            out.append(word)
    return shlex.join(out + ["--iterations", str(steps)])


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stage_metrics(work: Path, stage: str) -> dict | None:
    """The last validation record (or metrics.json) a stage wrote."""
    run = work / stage
    if (run / "metrics.json").is_file():
        return json.loads((run / "metrics.json").read_text())
    log_file = run / "validation.jsonl"
    if log_file.is_file():
        lines = [line for line in log_file.read_text().splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None
    return None


def stage_files(folder: Path) -> dict[str, dict]:
    """Every ``.safetensors`` under a folder of build stages (``toy_world_build/``) → its sha256, size and the
    file that says how it was made (the nearest ``command.txt`` or ``build_state.json`` above it)."""
    def made_by(path: Path) -> str | None:
        for d in path.parents:
            for name in ("command.txt", "build_state.json"):
                if (d / name).is_file():
                    return (d / name).relative_to(folder).as_posix()
            if d == folder:
                return None
        return None

    return {path.relative_to(folder).as_posix(): {"sha256": sha256(path), "bytes": path.stat().st_size,
                                                  "made_by": made_by(path)}
            for path in sorted(folder.rglob("*.safetensors"))}


if __name__ == "__main__":  # python -m training.build_records toy_world_build: rewrite its manifest.json
    import sys

    stages = Path(sys.argv[1])
    (stages / "manifest.json").write_text(json.dumps({"files": stage_files(stages)}, indent=1) + "\n")


def write_manifest(folder: Path, manifest: dict) -> dict:
    """``folder/manifest.json``, indented, ending in a newline; returns the manifest."""
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def parse_new_folder_args(parser, argv: list[str] | None, prog: str):
    """Logging on, the arguments parsed, and ``--out`` refused when it exists (nothing is overwritten)."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parser.parse_args(argv)
    if args.out.exists():
        raise SystemExit(f"{prog}: {args.out} exists; give a new folder (nothing is overwritten)")
    return args
