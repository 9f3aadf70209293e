"""LoadOmnimatteToyClip: a bundled held-out toy-world clip with its ground truth (docs/toy_world.md)."""

from __future__ import annotations

import os

from comfy_api.latest import io

from omnimatte_core.toy_clip import load_toy_clip
from .checks import CATEGORY
from .model_folders import TOY_WORLD_DIR

NODE = "LoadOmnimatteToyClip"
DEMO_DIR = os.path.join(TOY_WORLD_DIR, "demo")


def demo_clip_names() -> list[str]:
    if not os.path.isdir(DEMO_DIR):
        return []
    return sorted(f for f in os.listdir(DEMO_DIR) if f.endswith(".safetensors"))


class LoadOmnimatteToyClip(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=NODE,
            display_name="Load Toy Clip (Omnimatte)",
            category=CATEGORY,
            description="A held-out clip of the pack's toy world (128×128, 17 frames, procedural) with its ground "
                        "truth, to see the method work with nothing downloaded. The toy models never saw it.",
            inputs=[
                io.Combo.Input("clip", options=demo_clip_names(),
                               tooltip="Bundled demo clips (toy_world/demo/)."),
            ],
            outputs=[
                io.Image.Output(display_name="video", tooltip="The input frames."),
                io.Mask.Output(display_name="object_mask", tooltip="The object to remove (no shadow): what a "
                                                                   "user would draw or track."),
                io.Mask.Output(display_name="keep_mask", tooltip="Other objects to keep (empty when the clip has "
                                                                 "none)."),
                io.Mask.Output(display_name="gt_alpha", tooltip="Ground-truth alpha: the object and its shadow."),
                io.Image.Output(display_name="gt_background", tooltip="Ground-truth clean plate."),
                io.Float.Output(display_name="fps"),
            ],
        )

    @classmethod
    def execute(cls, clip: str) -> io.NodeOutput:
        path = os.path.join(DEMO_DIR, clip)
        if not os.path.isfile(path):
            raise ValueError(f"{NODE}: no toy clip {clip!r} in {DEMO_DIR}. The toy world ships with the pack; "
                             "re-clone it or rebuild with `python -m training.toy_world --resume`.")
        toy = load_toy_clip(path)
        return io.NodeOutput(toy.video, toy.object_mask, toy.keep_mask, toy.gt_alpha, toy.gt_background, toy.fps)
