"""The EasyOmnimatte V3 node pack: thin nodes over ``omnimatte_core``."""

from typing_extensions import override

from comfy_api.latest import ComfyExtension, io

from .conditioning import OmnimatteConditioning
from .decode import OmnimatteDecode
from .experts import LoadOmnimatteExperts
from .layers import CompositeLayers, RecoverForeground
from .model_folders import register_model_folder
from .objects import CompositeLayerStack, OmnimatteObject, OmnimatteSelectLayer
from .plate_matte import AlphaFromCleanPlate
from .save_layers import SaveOmnimatteLayers
from .sampler import BranchWanSampler
from .text_embeds import OmnimatteLoadTextEmbeds, OmnimatteSaveTextEmbeds
from .toy_clip import LoadOmnimatteToyClip
from .video_frames import OmnimatteVideoFrames

NODE_CLASSES: list[type[io.ComfyNode]] = [
    OmnimatteVideoFrames,
    OmnimatteObject,
    OmnimatteConditioning,
    LoadOmnimatteExperts,
    BranchWanSampler,
    OmnimatteDecode,
    OmnimatteSaveTextEmbeds,
    OmnimatteLoadTextEmbeds,
    RecoverForeground,
    CompositeLayers,
    OmnimatteSelectLayer,
    CompositeLayerStack,
    AlphaFromCleanPlate,
    SaveOmnimatteLayers,
    LoadOmnimatteToyClip,
]


class EasyOmnimatteExtension(ComfyExtension):
    @override
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_CLASSES)


async def comfy_entrypoint() -> EasyOmnimatteExtension:
    return EasyOmnimatteExtension()


__all__ = ["comfy_entrypoint", "register_model_folder", "NODE_CLASSES"]
