"""The runner's closing words on the console: where the layers are, how many frames of what size,
how long it took and how many warnings there were. The file list as JSON is behind ``--json``."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from pathlib import Path

FRAME_FOLDERS = ("rgba", "alpha", "background", "foreground", "composite")


class WarningCounter(logging.Handler):
    """Counts the warnings and errors logged during a run (the summary says how many)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def frame_geometry(out: Path, files: list[str]) -> tuple[int, tuple[int, int]] | None:
    """(frames, (width, height)) of the first layer folder's PNG sequence or video; None when unknown."""
    pngs = defaultdict(list)
    for name in files:
        if name.endswith(".png") and Path(name).parent.name in FRAME_FOLDERS:
            pngs[Path(name).parent].append(name)
    if pngs:
        from PIL import Image

        folder, names = min(pngs.items())
        with Image.open(out / sorted(names)[0]) as first:
            return len(names), first.size
    videos = [n for n in files if n.endswith((".mp4", ".mov", ".webm"))]
    if not videos:
        return None
    import av

    with av.open(str(out / sorted(videos)[0])) as container:
        stream = container.streams.video[0]
        return stream.frames, (stream.width, stream.height)


def describe_folder(names: list[str]) -> str:
    """'rgba 17 PNGs, alpha 17 PNGs, background.mp4' for the files of one layer folder."""
    per_layer: Counter = Counter()
    singles = []
    for name in sorted(names):
        path = Path(name)
        if path.suffix == ".png" and path.parent.name in FRAME_FOLDERS:
            per_layer[path.parent.name] += 1
        else:
            singles.append(path.name)
    parts = [f"{layer} {n} PNGs" for layer, n in sorted(per_layer.items())]
    return ", ".join(parts + singles)


def summary(result: dict, out: Path, warnings: int, log_path: Path) -> str:
    """Human lines for the end of a successful run."""
    files = result.get("files", [])
    by_folder = defaultdict(list)
    for name in files:
        by_folder[Path(name).parts[0]].append(name)
    lines = [f"Layers written to {out.resolve()}:"]
    lines += [f"  {folder}/  {describe_folder(names)}" for folder, names in sorted(by_folder.items())]
    geometry = frame_geometry(out, files)
    size = f"{geometry[0]} frames at {geometry[1][0]}×{geometry[1][1]}, " if geometry else ""
    lines.append(f"{size}{len(files)} files in {result.get('seconds', 0):.1f} s.")
    if "contact_sheet" in result:
        lines.append(f"Contact sheet: {result['contact_sheet']}  metrics: {Path(result['folder']) / 'metrics.json'}")
    lines.append(f"{warnings} warning(s), shown above; everything is in {log_path}." if warnings
                 else f"No warnings. The full log is {log_path}.")
    lines.append("For the file list as JSON, add --json.")
    return "\n".join(lines)
