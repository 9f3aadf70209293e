"""The registry's icon and banner, cut from the toy demo's contact sheet.

The Comfy Registry and ComfyUI-Manager show ``[tool.comfy] Icon`` (square, at most 400 px) and
``Banner``. Both are frames of a real toy-world decomposition rather than a drawing, so what a
user sees before installing is what the pack does: the input, the clean plate, the alpha matte
with the shadow, and the layer over a new background.

    python -m omnimatte_workflows.registry_images     (writes docs/icon.png and docs/banner.png)
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PIL import Image

PACK_DIR = Path(__file__).resolve().parents[1]
SHEET = PACK_DIR / "docs" / "images" / "toy_demo_contact_sheet.png"
TILE, LABEL = 256, 16  # the sheet's tile size and the label band above the first row
COLUMNS = {"input": 0, "background": 2, "alpha": 3, "over new bg": 5}  # sheet column of each layer
ICON_SIZE, BANNER_HEIGHT, GAP = 256, 256, 4

log = logging.getLogger("omnimatte.registry_images")


def tiles(sheet: Image.Image) -> list[Image.Image]:
    """The first frame's input, background, alpha and composite, in that order."""
    return [sheet.crop((c * TILE, LABEL, (c + 1) * TILE, LABEL + TILE)) for c in COLUMNS.values()]


def icon(parts: list[Image.Image]) -> Image.Image:
    """2×2 grid: input and plate above, matte and composite below (square, ≤ 400 px for the registry)."""
    half = (ICON_SIZE - GAP) // 2
    out = Image.new("RGB", (ICON_SIZE, ICON_SIZE), "white")
    for i, part in enumerate(parts):
        out.paste(part.resize((half, half), Image.LANCZOS), ((i % 2) * (half + GAP), (i // 2) * (half + GAP)))
    return out


def banner(parts: list[Image.Image]) -> Image.Image:
    """The four layers side by side, a 4:1 strip."""
    side = BANNER_HEIGHT
    out = Image.new("RGB", (len(parts) * side + (len(parts) - 1) * GAP, side), "white")
    for i, part in enumerate(parts):
        out.paste(part.resize((side, side), Image.LANCZOS), (i * (side + GAP), 0))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheet", type=Path, default=SHEET)
    parser.add_argument("--out", type=Path, default=PACK_DIR / "docs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parts = tiles(Image.open(args.sheet).convert("RGB"))
    for name, image in (("icon.png", icon(parts)), ("banner.png", banner(parts))):
        image.save(args.out / name, optimize=True)
        log.info("wrote %s (%d×%d)", args.out / name, *image.size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
