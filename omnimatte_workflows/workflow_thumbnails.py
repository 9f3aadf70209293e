"""The templates browser's thumbnails: ``workflows/<name>.jpg`` beside every ``workflows/<name>.json``.

ComfyUI serves a custom-node pack's ``workflows/`` folder at ``/api/workflow_templates/<pack folder>/``, and
its frontend shows each template there with the picture ``<name>.jpg`` from the same folder (custom-node
templates are always ``mediaType 'image'``, ``mediaSubtype 'jpg'``). Where a workflow has a real run here
(``toy_world_demo``: the toy demo's contact sheet, ``docs/images/toy_demo_contact_sheet.png``), its thumbnail
is frames of that run: input, clean plate, alpha matte, layer over a new background. The others need model
files this machine does not have, so their thumbnail is their graph, drawn from the workflow file.

    python -m omnimatte_workflows.workflow_thumbnails            (rewrites every thumbnail)
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from omnimatte_workflows import registry_images

PACK_DIR = Path(__file__).resolve().parents[1]
WORKFLOWS = PACK_DIR / "workflows"
SIZE = 384  # square; the browser's cards crop to a square
QUALITY = 88
FROM_RUNS = {"toy_world_demo": registry_images.SHEET}  # workflow → contact sheet of a real run of it

BACKGROUND, NODE, TITLE_BAR, OUTLINE, TEXT = "#202020", "#353535", "#2b2b2b", "#555555", "#dddddd"
PACK_TITLE_BAR = "#4a3b6b"  # this pack's nodes stand out from core ones
LINK_COLOURS = {"MODEL": "#b39ddb", "CONDITIONING": "#ffa931", "IMAGE": "#64b5f6", "MASK": "#81c784",
                "LATENT": "#ff9cf9", "VAE": "#ff6e6e", "CLIP": "#ffd500", "CLIP_VISION": "#a8dadc",
                "VIDEO": "#64b5f6"}
MARGIN, CAPTION = 12, 44  # pixels: border, and the band under the graph that names the workflow
TITLE_HEIGHT, SLOT_HEIGHT = 30, 20  # canvas units, as the frontend draws a node's title bar and slots

log = logging.getLogger("omnimatte.workflow_thumbnails")


def readable(node: dict) -> str:
    """The node's title, or its type split into words (``OmnimatteConditioning`` → ``Omnimatte Conditioning``)."""
    return node.get("title") or re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", node["type"])


def from_run(sheet: Path) -> Image.Image:
    """The first frame's input, plate, matte and composite of a real run, 2×2."""
    parts = registry_images.tiles(Image.open(sheet).convert("RGB"))
    return registry_images.icon(parts).resize((SIZE, SIZE), Image.LANCZOS)


def _bounds(nodes: list[dict]) -> tuple[float, float, float, float]:
    """Canvas box around every node, title bars included: (x0, y0, x1, y1)."""
    xs = [n["pos"][0] for n in nodes] + [n["pos"][0] + n["size"][0] for n in nodes]
    ys = [n["pos"][1] - TITLE_HEIGHT for n in nodes] + [n["pos"][1] + n["size"][1] for n in nodes]
    return min(xs), min(ys), max(xs), max(ys)


def _fitted(text: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…" if text else ""


def from_graph(workflow: dict, name: str) -> Image.Image:
    """The workflow's nodes and links as the canvas lays them out, scaled to fit, over its name."""
    nodes = [n for n in workflow["nodes"] if n.get("mode", 0) != 4]
    x0, y0, x1, y1 = _bounds(nodes)
    width, height = SIZE - 2 * MARGIN, SIZE - 2 * MARGIN - CAPTION
    scale = min(width / (x1 - x0), height / (y1 - y0))
    dx = MARGIN + (width - (x1 - x0) * scale) / 2 - x0 * scale
    dy = MARGIN + (height - (y1 - y0) * scale) / 2 - y0 * scale

    def at(x: float, y: float) -> tuple[float, float]:
        return x * scale + dx, y * scale + dy

    image = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    draw = ImageDraw.Draw(image)
    by_id = {n["id"]: n for n in nodes}
    for _, origin, slot, target, target_slot, kind in workflow["links"]:
        if origin in by_id and target in by_id:
            a, b = by_id[origin], by_id[target]
            start = at(a["pos"][0] + a["size"][0], a["pos"][1] + (slot + 0.5) * SLOT_HEIGHT)
            end = at(b["pos"][0], b["pos"][1] + (target_slot + 0.5) * SLOT_HEIGHT)
            draw.line([start, end], fill=LINK_COLOURS.get(kind, "#999999"), width=2)
    font = ImageFont.load_default(size=max(7, round(16 * scale)))
    for node in nodes:
        left, top = at(node["pos"][0], node["pos"][1] - TITLE_HEIGHT)
        right, bottom = at(node["pos"][0] + node["size"][0], node["pos"][1] + node["size"][1])
        draw.rounded_rectangle([left, top, right, bottom], radius=3, fill=NODE, outline=OUTLINE)
        bar = PACK_TITLE_BAR if "Omnimatte" in node["type"] or node["type"].startswith("Branch") else TITLE_BAR
        draw.rounded_rectangle([left, top, right, top + TITLE_HEIGHT * scale], radius=3, fill=bar)
        draw.text((left + 3, top + 1), _fitted(readable(node), font, right - left - 5), fill=TEXT, font=font)
    caption = ImageFont.load_default(size=22)
    draw.text((SIZE / 2, SIZE - MARGIN - CAPTION / 2), name.replace("_", " "), fill=TEXT, font=caption, anchor="mm")
    return image


def thumbnail(path: Path) -> Image.Image:
    """The thumbnail of the workflow at ``path``: from a real run where there is one, else its graph."""
    sheet = FROM_RUNS.get(path.stem)
    return from_run(sheet) if sheet else from_graph(json.loads(path.read_text()), path.stem)


def thumbnail_path(workflow: Path) -> Path:
    """Where the frontend looks for a custom-node template's picture: beside it, ``.jpg``."""
    return workflow.with_suffix(".jpg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workflows", type=Path, default=WORKFLOWS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for path in sorted(args.workflows.glob("*.json")):
        target = thumbnail_path(path)
        thumbnail(path).save(target, "JPEG", quality=QUALITY, optimize=True)
        log.info("wrote %s (%s)", target.relative_to(args.workflows.parent),
                 "real run" if path.stem in FROM_RUNS else "graph")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
