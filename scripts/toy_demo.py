"""The toy-world demo of the headless runner: ``bash scripts/run.sh`` with no clip given.

Runs ``workflows/toy_world_demo.json`` (the same node chain as real runs, with the embedded toy
models and a bundled held-out clip), writes every layer under ``OUT/<clip>-object/<layer>/``,
then a contact sheet PNG and a metrics JSON against the clip's ground truth (docs/toy_world.md).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from omnimatte_core.quantise import to_uint8
from scripts import comfy_host

log = logging.getLogger("omnimatte.toy_demo")
DEMO_DIR = comfy_host.PACK_DIR / "toy_world" / "demo"
SHEET_FRAMES = (0, 8, 16)
SHEET_COLUMNS = ("input", "trimask", "background", "alpha", "GT alpha", "over new bg")


def demo_clips() -> list[str]:
    return sorted(p.name for p in DEMO_DIR.glob("*.safetensors")) if DEMO_DIR.is_dir() else []


def run_folder(out: Path, stem: str) -> Path:
    """``OUT/<clip>-object``, or ``-2``, ``-3`` … when an earlier run is there (runs never mix)."""
    folder, n = out / f"{stem}-object", 2
    while folder.exists():
        folder, n = out / f"{stem}-object-{n}", n + 1
    return folder


def build_demo_prompt(args: argparse.Namespace, clip: str, folder_name: str) -> dict:
    from scripts.run_workflow import SETTINGS, WORKFLOWS_DIR, _set_all, workflow_prompt

    prompt = workflow_prompt(WORKFLOWS_DIR / "toy_world_demo.json")
    _set_all(prompt, "LoadOmnimatteToyClip", "clip", clip)
    for node in prompt.values():
        if node["class_type"] == "SaveImage":
            layer = node["inputs"]["filename_prefix"].split("/")[-1]
            node["inputs"]["filename_prefix"] = f"{folder_name}/{layer}/{layer}"
    for name, node_types in SETTINGS.items():
        if name not in ("width", "height"):  # the toy models know 128×128 only
            for node_type in node_types:
                _set_all(prompt, node_type, name, getattr(args, name))
    return prompt


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
    from scripts.toy_eval import measure

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


def run_demo(args: argparse.Namespace) -> dict:
    from omnimatte_core.toy_clip import load_toy_clip
    from scripts.graph_run import RunError, execute

    clips = demo_clips()
    if not clips:
        raise RunError(f"no toy-world demo clip in {DEMO_DIR}; the pack ships them (re-clone it), or rebuild with "
                       "python -m training.toy_world --resume")
    clip = args.toy_clip or clips[0]
    if not clip.endswith(".safetensors"):
        clip += ".safetensors"
    if clip not in clips:
        raise RunError(f"--toy-clip {args.toy_clip}: no such demo clip; choose one of {', '.join(clips)}")
    folder = run_folder(args.out, Path(clip).stem)
    log.info("toy-world demo: %s with the embedded TOY models (128×128, procedural); real footage needs Casper "
             "and trained experts", clip)
    args.out.mkdir(parents=True, exist_ok=True)
    result = execute(build_demo_prompt(args, clip, folder.name), args.out)
    toy = load_toy_clip(DEMO_DIR / clip)
    metrics, layers = evaluate(toy, folder)
    metrics_path, sheet_path = folder / "metrics.json", folder / "contact_sheet.png"
    metrics_path.write_text(json.dumps({"clip": clip, "toy_models": True, **metrics,
                                        "seconds": result["seconds"]}, indent=1) + "\n")
    contact_sheet(toy, layers).save(sheet_path)
    log.info("layers in %s; contact sheet %s; metrics %s", folder, sheet_path, metrics_path)
    return {**result, "folder": str(folder), "contact_sheet": str(sheet_path), "metrics": metrics}
