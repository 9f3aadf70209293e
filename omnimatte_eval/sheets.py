"""Pictures of decompositions: labelled contact sheets, mattes shown as frames, a new background to
composite over, and a saved layer folder read back and measured against the toy clip's ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from omnimatte_core.quantise import to_uint8

SHEET_FRAMES = (0, 8, 16)
SHEET_COLUMNS = ("input", "trimask", "background", "alpha", "GT alpha", "over new bg")


def read_layer(folder: Path, layer: str) -> torch.Tensor:
    """The saved PNG sequence of one layer → [N, H, W, C] float in [0, 1]."""
    from PIL import Image

    files = sorted((folder / layer).glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no {layer} frames in {folder / layer}")
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f), dtype=np.float32) / 255.0) for f in files])


def new_background(like: torch.Tensor) -> torch.Tensor:
    """A checkerboard over a colour ramp [N, H, W, 3]: obviously not the clip's own background."""
    n, h, w = like.shape[:3]
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    ramp = torch.stack((0.2 + 0.6 * x, 0.3 + 0.3 * y, 0.8 - 0.5 * x), dim=-1)
    checker = ((torch.arange(h)[:, None] // 16 + torch.arange(w)[None] // 16) % 2).float()[..., None]
    return (ramp * (0.75 + 0.25 * checker)).expand(n, h, w, 3)


def evaluate(toy, folder: Path) -> tuple[dict, dict]:
    """Metrics against ground truth, and the layers read back (as a user would find them)."""
    from omnimatte_eval.toy_eval import measure

    layers = {name: read_layer(folder, name)[..., :3] for name in ("background", "alpha", "foreground")}
    layers["alpha"] = layers["alpha"].mean(-1)
    return measure(toy, layers), layers


def contact_sheet(toy, layers: dict):
    """PIL image: one row per frame in SHEET_FRAMES, the SHEET_COLUMNS side by side, labelled."""
    from omnimatte_core import layers as layer_maths
    from omnimatte_core import trimask as tm

    h, w = toy.video.shape[1:3]
    trimask = tm.build_trimask(tm.binarize(toy.object_mask), tm.binarize(toy.keep_mask), tm.dilation_for_size(h, w))
    over = layer_maths.composite(layers["foreground"][..., :3], layers["alpha"], new_background(toy.video))
    columns = (toy.video, grey(trimask), layers["background"][..., :3], grey(layers["alpha"]), grey(toy.gt_alpha), over)
    return labelled_sheet(columns, SHEET_COLUMNS, SHEET_FRAMES)


def grey(mask: torch.Tensor) -> torch.Tensor:
    """[N, H, W] → [N, H, W, 3] for showing a matte beside frames."""
    return mask[..., None].expand(*mask.shape, 3)


def labelled_sheet(columns, names, frames, scale: int = 2, header: int = 16):
    """Videos [N, H, W, 3] side by side, one row per frame index (clamped to N − 1), names on top → PIL image."""
    from PIL import Image, ImageDraw

    n, _, w = columns[0].shape[:3]
    rows = [torch.cat([c[min(f, n - 1)] for c in columns], dim=1) for f in frames]
    grid = to_uint8(torch.cat(rows, dim=0)).numpy()
    image = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    sheet = Image.new("RGB", (image.width, image.height + header), "white")
    sheet.paste(image, (0, header))
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(names):
        draw.text((i * w * scale + 4, 2), name, fill="black")
    return sheet
