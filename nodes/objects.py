"""Several objects: the Omnimatte Object chain, picking one object's layer, re-compositing them all."""

from __future__ import annotations

from comfy_api.latest import io

from omnimatte_core import layers as layer_maths
from omnimatte_core import objects as core_objects
from .checks import CATEGORY, check_finite, check_same_video, core_error

OmnimatteObjects = io.Custom("OMNIMATTE_OBJECTS")
OmnimatteLayers = io.Custom("OMNIMATTE_LAYERS")


class OmnimatteObject(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="OmnimatteObject",
            display_name="Omnimatte Object",
            category=CATEGORY,
            description="Adds one object to a list of objects to separate, each into its own layer. Chain one node "
                        "per object (front layer first) into OmnimatteConditioning's 'objects'. Each object's "
                        "layer treats the other objects as kept; the run also gives a clean plate with all of "
                        "them removed.",
            inputs=[
                io.Mask.Input("mask", tooltip="This object's mask video (or one frame for all), 1 = object; e.g. "
                                              "SAM3 Track to Mask with this object's index."),
                io.String.Input("name", default="",
                                tooltip="Folder-safe name for this object's layer (e.g. 'dog'); empty = object_<n>."),
                OmnimatteObjects.Input("objects", optional=True,
                                       tooltip="The objects so far (an earlier Omnimatte Object). Leave empty for "
                                               "the first (front) object."),
            ],
            outputs=[OmnimatteObjects.Output(display_name="objects")],
        )

    @classmethod
    def execute(cls, mask, name: str, objects=None) -> io.NodeOutput:
        node = "OmnimatteObject"
        check_finite(node, "mask", mask)
        if mask.ndim != 3:
            raise ValueError(f"{node}: 'mask' must be a MASK [frames, height, width]; got shape {tuple(mask.shape)}.")
        objects = objects if objects is not None else core_objects.ObjectMasks()
        if len(objects) and objects.masks[0].shape[1:] != mask.shape[1:]:
            first = objects.masks[0]
            raise ValueError(f"{node}: 'mask' is {mask.shape[2]}×{mask.shape[1]} but the first object's mask is "
                             f"{first.shape[2]}×{first.shape[1]}. Every object's mask must be made from the same "
                             "video at the same size.")
        try:
            return io.NodeOutput(objects.add(mask, name))
        except ValueError as err:
            raise core_error(node, err) from err


class OmnimatteSelectLayer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="OmnimatteSelectLayer",
            display_name="Omnimatte Select Layer",
            category=CATEGORY,
            description="One object's layer out of a several-object run, for Recover Foreground, Composite Layers "
                        "or Save Omnimatte Layers: the background with this object (and its effects) removed and "
                        "the other objects kept, and this object's alpha.",
            inputs=[
                OmnimatteLayers.Input("layers", tooltip="layers from OmnimatteDecode."),
                io.String.Input("object", default="0",
                                tooltip="The object's number (0 = the first Omnimatte Object, the front layer) or "
                                        "its name."),
            ],
            outputs=[
                io.Image.Output(display_name="background", tooltip="This object removed, the other objects kept."),
                io.Mask.Output(display_name="alpha", tooltip="This object and its effects."),
                io.String.Output(display_name="name"),
            ],
        )

    @classmethod
    def execute(cls, layers, object: str) -> io.NodeOutput:  # noqa: A002 (the input's name)
        try:
            k = layers.index(object.strip())
        except ValueError as err:
            raise core_error("OmnimatteSelectLayer", err) from err
        return io.NodeOutput(layers.backgrounds[k], layers.alphas[k], layers.names[k])


class CompositeLayerStack(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="CompositeLayerStack",
            display_name="Composite Layer Stack (Omnimatte)",
            category=CATEGORY,
            description="Re-composites every object's layer (with its shadows and reflections) over a background, "
                        "back to front: over the clean plate it gives the input back where layers do not overlap; "
                        "over a new background it moves all the objects there. Foregrounds are recovered from the "
                        "original frames.",
            inputs=[
                io.Image.Input("video", tooltip="The ORIGINAL frames, at the size the layers were decoded to."),
                OmnimatteLayers.Input("layers", tooltip="layers from OmnimatteDecode."),
                io.String.Input("order", default="",
                                tooltip="Layer order, front first, as object numbers: e.g. '1,0' puts object 1 in "
                                        "front. Empty = the order the objects were given."),
                io.Float.Input("epsilon", default=1e-3, min=1e-6, max=0.1, step=1e-4,
                               tooltip="Added to α before dividing when recovering each foreground."),
                io.Float.Input("alpha_gain", default=1.0, min=0.0, max=4.0, step=0.05,
                               tooltip="Scales every α before compositing (clamped to 1)."),
                io.Image.Input("background", optional=True,
                               tooltip="Where the layers go: a new background video or image (resized to cover, "
                                       "centre-cropped, looped). Empty = the clean plate."),
            ],
            outputs=[io.Image.Output(display_name="composite")],
        )

    @classmethod
    def execute(cls, video, layers, order: str, epsilon: float, alpha_gain: float, background=None) -> io.NodeOutput:
        node = "CompositeLayerStack"
        video = video[..., :3]
        check_same_video(node, ("video", video), ("layers", layers.plate))
        check_finite(node, "video", video)
        try:
            indices = core_objects.parse_order(order, len(layers))
        except ValueError as err:
            raise core_error(node, err) from err
        n, h, w = video.shape[:3]
        backdrop = layers.plate.to(video) if background is None else \
            layer_maths.fit_background(background[..., :3].to(video), h, w, n)
        foregrounds = layers.foregrounds(video, epsilon)
        return io.NodeOutput(core_objects.composite_stack(foregrounds, layers.alphas.to(video), backdrop, indices,
                                                          alpha_gain))
