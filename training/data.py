"""``python -m training.data --preview grid.png``: look at synthetic clips before training on them.

Rows are clips; columns are the input frame, the object mask given to the model, the GT
alpha (object ∪ shadow) and the shadow region (Me), each at the clip's middle frame.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from omnimatte_core.quantise import to_uint8

from . import common
from .dataset import SyntheticClips
from .sources import background_source, foreground_source

log = logging.getLogger("training.data")
COLUMNS = ("input", "object mask", "GT alpha", "shadow region")


def preview_grid(clips: SyntheticClips, indices: list[int], frame: int | None = None):
    """A PIL image: one row per clip index, the four COLUMNS side by side, with a header."""
    from PIL import Image, ImageDraw

    rows = []
    for index in indices:
        clip = clips.clip(index)
        f = clip.video.shape[0] // 2 if frame is None else frame
        gray = lambda m: m[f].float()[..., None].expand(-1, -1, 3)  # noqa: E731
        tiles = [clip.video[f], gray(clip.object_mask), gray(clip.gt_alpha), gray(clip.shadow_region)]
        rows.append(torch.cat(tiles, dim=1))
    grid = to_uint8(torch.cat(rows, dim=0)).numpy()
    header = 14
    image = Image.new("RGB", (grid.shape[1], grid.shape[0] + header), "white")
    image.paste(Image.fromarray(grid), (0, header))
    draw = ImageDraw.Draw(image)
    tile_w = grid.shape[1] // len(COLUMNS)
    for i, name in enumerate(COLUMNS):
        draw.text((i * tile_w + 2, 1), name, fill="black")
    return image


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preview", type=Path, required=True, help="PNG file to write")
    common.add_data_args(p, shadow_prob=1.0, size=(128, 224, 9))
    p.add_argument("--clips", type=int, default=4, help="rows (clip indices 0 … clips-1)")
    return p


def main(argv: list[str] | None = None) -> Path:
    args = common.start_cli(parser(), argv, comfy=False)
    clips = SyntheticClips(common.data_config(args), foreground_source(args.foregrounds), background_source(args.backgrounds))
    args.preview.parent.mkdir(parents=True, exist_ok=True)
    preview_grid(clips, list(range(args.clips))).save(args.preview)
    log.info("wrote %s (%d clips, seed %d)", args.preview, args.clips, args.seed)
    return args.preview


if __name__ == "__main__":
    main()
