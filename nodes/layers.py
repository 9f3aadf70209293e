"""RecoverForeground and CompositeLayers: thin nodes over ``omnimatte_core.layers``."""

from __future__ import annotations

from comfy_api.latest import io

from omnimatte_core import layers
from .checks import CATEGORY, check_finite, check_same_video


class RecoverForeground(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="RecoverForeground",
            display_name="Recover Foreground (Omnimatte)",
            category=CATEGORY,
            description="Foreground colours from the original frames, the clean background and the alpha "
                        "matte: F = clip(I − (1−α)·B) / (α + ε). Also returns an RGBA video (straight alpha).",
            inputs=[
                io.Image.Input("video", tooltip="The ORIGINAL frames at source size (not the working size)."),
                io.Image.Input("background", tooltip="Clean background plate from OmnimatteDecode."),
                io.Mask.Input("alpha", tooltip="Alpha matte from OmnimatteDecode (1 = object and its effects)."),
                io.Float.Input("epsilon", default=1e-3, min=1e-6, max=0.1, step=1e-4,
                               tooltip="Added to α before dividing; larger = darker but more stable edges."),
            ],
            outputs=[
                io.Image.Output(display_name="foreground", tooltip="Straight (unpremultiplied) foreground colours."),
                io.Image.Output(display_name="rgba", tooltip="Foreground + alpha as a 4-channel IMAGE; "
                                                             "core SaveImage writes it as RGBA PNGs."),
            ],
        )

    @classmethod
    def execute(cls, video, background, alpha, epsilon: float) -> io.NodeOutput:
        node = "RecoverForeground"
        video, background = video[..., :3], background[..., :3]
        check_same_video(node, ("video", video), ("background", background), ("alpha", alpha))
        for name, t in (("video", video), ("background", background), ("alpha", alpha)):
            check_finite(node, name, t)
        foreground = layers.recover_foreground(video, background.to(video), alpha.to(video), epsilon)
        return io.NodeOutput(foreground, layers.rgba(foreground, alpha.to(video).clamp(0, 1)))


class CompositeLayers(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="CompositeLayers",
            display_name="Composite Layers (Omnimatte)",
            category=CATEGORY,
            description="Places the foreground (with its shadows and reflections) over a new background: "
                        "α·F + (1−α)·B.",
            inputs=[
                io.Image.Input("foreground", tooltip="Foreground from RecoverForeground."),
                io.Mask.Input("alpha", tooltip="Alpha matte (1 = object and its effects)."),
                io.Image.Input("background", tooltip="New background: a video or one image. It is resized to "
                                                     "cover the frame and centre-cropped."),
                io.Float.Input("alpha_gain", default=1.0, min=0.0, max=4.0, step=0.05,
                               tooltip="Scales α before compositing (clamped to 1): below 1 fades the "
                                       "layer and its effects, above 1 strengthens faint shadows."),
                io.Combo.Input("short_background", options=["loop", "hold_last"], default="loop",
                               tooltip="When the background video has fewer frames than the foreground: "
                                       "loop it, or hold its last frame."),
            ],
            outputs=[io.Image.Output(display_name="composite")],
        )

    @classmethod
    def execute(cls, foreground, alpha, background, alpha_gain: float, short_background: str) -> io.NodeOutput:
        node = "CompositeLayers"
        foreground = foreground[..., :3]
        check_same_video(node, ("foreground", foreground), ("alpha", alpha))
        for name, t in (("foreground", foreground), ("alpha", alpha), ("background", background)):
            check_finite(node, name, t)
        n, h, w = foreground.shape[:3]
        fitted = layers.fit_background(background[..., :3].to(foreground), h, w, n, loop=short_background == "loop")
        return io.NodeOutput(layers.composite(foreground, alpha.to(foreground), fitted, alpha_gain))
