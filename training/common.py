"""CLI plumbing shared by train, analyze_blocks and sweep_tau: model/data arguments and loading."""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace

import torch

from .dataset import DataConfig, SyntheticClips
from .sources import background_source, foreground_source

HELD_OUT_SEED_OFFSET = 1_000_000  # validation/analysis clips use seed + this: never drawn for training


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="base diffusion model (Casper Wan2.1-Fun-InP) .safetensors")
    p.add_argument("--vae", required=True, help="Wan 2.1 VAE .safetensors")
    p.add_argument("--text-embeds", required=True, help="cached text embedding file, or folder with captions.json")
    p.add_argument("--clip-vision", default=None,
                   help="clip_vision_h.safetensors, or random:SEED (smoke tests only); needed only by an I2V-type "
                        "base (one with img_emb, like Casper); a T2V-type base (the toy remover) takes none")
    p.add_argument("--clip-vision-cache", default=None, metavar="DIR",
                   help="store CLIP-H features of frame 0 here; runs that find them all never load CLIP-H")
    p.add_argument("--base-lora", default=None, metavar="FILE[:STRENGTH]",
                   help="a LoRA that is part of the frozen base (Casper 14B = Wan2.1-Fun-14B-InP + LoRA), applied "
                        "as LoraLoaderModelOnly does")
    p.add_argument("--shift", type=float, default=5.0, help="timestep shift (Casper samples with 5)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")


def add_data_args(p: argparse.ArgumentParser, shadow_prob: float = 0.8, camera_prob: float = 0.5,
                  size: tuple[int, int, int] = (480, 832, 81)) -> None:
    """Data source and clip-shape options; ``size`` is the default (height, width, frames)."""
    p.add_argument("--foregrounds", default="procedural", help="VideoMatte240K-style folder (fgr/, pha/) or 'procedural'")
    p.add_argument("--backgrounds", default="procedural", help="folder of videos (+ NAME.txt captions) or 'procedural'")
    p.add_argument("--height", type=int, default=size[0])
    p.add_argument("--width", type=int, default=size[1])
    p.add_argument("--frames", type=int, default=size[2], help="4n+1")
    p.add_argument("--shadow-prob", type=float, default=shadow_prob)
    p.add_argument("--camera-prob", type=float, default=camera_prob)
    p.add_argument("--keep-prob", type=float, default=0.0,
                   help="share of clips with a second object (and shadow) marked keep (trimask 0)")
    p.add_argument("--seed", type=int, default=0)


def start_cli(p: argparse.ArgumentParser, argv: list[str] | None, comfy: bool = True) -> argparse.Namespace:
    """Logging, arguments, and (if ``comfy``) ComfyUI imported as a library with the thread count."""
    from omnimatte_host import comfy_host

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = p.parse_args(argv)
    if comfy:
        comfy_host.import_comfy(threads=args.threads)
    return args


def data_config(args: argparse.Namespace) -> DataConfig:
    return DataConfig(args.height, args.width, args.frames, args.seed, args.shadow_prob, args.camera_prob,
                      getattr(args, "keep_prob", 0.0))


@dataclass
class Inputs:
    base: object  # ModelPatcher with the shift applied
    vae: object
    text: object  # features.TextEmbeddings
    clip_vision: object  # features.ClipVisionFeatures, or None for a T2V-type base
    clips: SyntheticClips  # training stream (seed)
    held_out: SyntheticClips  # seed + HELD_OUT_SEED_OFFSET
    bf16: bool
    device: torch.device


def load_inputs(args: argparse.Namespace, precision: str = "auto") -> Inputs:
    """Base model (ComfyUI loader, shift applied), VAE, features and the synthetic clip streams."""
    import comfy.model_management

    from .branch_model import load_base_model, with_base_lora, with_shift
    from .features import TextEmbeddings
    from .loaders import load_vae

    device = comfy.model_management.get_torch_device()
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    base = load_base_model(args.model, torch.bfloat16 if bf16 else torch.float32 if precision == "fp32" else None)
    if getattr(args, "base_lora", None):
        base = with_base_lora(base, args.base_lora)
    base = with_shift(base, args.shift)
    text = TextEmbeddings(args.text_embeds)
    data = data_config(args)
    fg, bg = foreground_source(args.foregrounds), background_source(args.backgrounds)
    text.check(bg.captions())
    clip_vision = clip_vision_for(base, args)
    return Inputs(base, load_vae(args.vae), text, clip_vision, SyntheticClips(data, fg, bg),
                  SyntheticClips(replace(data, seed=args.seed + HELD_OUT_SEED_OFFSET), fg, bg), bf16, device)


def clip_vision_for(base, args: argparse.Namespace):
    """CLIP-H features for an I2V-type base; None for a T2V-type one (refusing a mismatch)."""
    from omnimatte_core.patching import has_image_embedding

    from .features import ClipVisionFeatures

    if not has_image_embedding(base):
        if args.clip_vision:
            raise SystemExit(f"--clip-vision was given but {args.model} has no img_emb (a T2V-type Wan takes no "
                             "CLIP-H features): drop --clip-vision")
        return None
    if not args.clip_vision:
        raise SystemExit(f"{args.model} is an I2V-type Wan (it has img_emb, like Casper) and needs CLIP-H features "
                         "of frame 0: pass --clip-vision clip_vision_h.safetensors")
    return ClipVisionFeatures(args.clip_vision, getattr(args, "clip_vision_cache", None))


def encoded_clip(inputs: Inputs, clips: SyntheticClips, index: int, clip=None):
    """(Clip, EncodedClip) for ``clips.clip(index)`` (or the already rendered ``clip`` of that index)."""
    from .encode import encode_clip

    clip = clips.clip(index) if clip is None else clip
    return clip, encode_clip(clip, index, inputs.vae, inputs.base.model.latent_format, inputs.text,
                             inputs.clip_vision)


class _ClipsByIndex(torch.utils.data.Dataset):
    def __init__(self, clips: SyntheticClips):
        self.clips = clips

    def __getitem__(self, index: int):
        return index, self.clips.clip(index)


def _as_is(item):
    return item


def render_ahead(clips: SyntheticClips, indices: list[int], workers: int):
    """Yield (index, Clip) in ``indices`` order; ``workers`` > 0 renders them in DataLoader processes.

    Clips are pure functions of (seed, index), so workers change speed, never content. A full-size
    clip (81×480×832) takes ~30 s on one CPU core: real-scale runs want several workers.
    """
    if workers <= 0:
        return ((i, clips.clip(i)) for i in indices)
    loader = torch.utils.data.DataLoader(_ClipsByIndex(clips), batch_size=None, sampler=indices, num_workers=workers,
                                         collate_fn=_as_is, prefetch_factor=2, persistent_workers=False)
    return iter(loader)
