"""``python -m training.cache_text``: encode every caption once, so training never holds the text encoder.

Captions come from a background folder (``NAME.txt`` beside each video, the default caption
for the rest) and/or ``--caption``. The umt5-xxl encoder loads with ComfyUI's ``load_clip``
(type wan) as ``CLIPLoader`` does; each caption becomes one cached CONDITIONING file
(``omnimatte_core.text_embeds`` format) and ``captions.json`` maps caption → file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Callable

from . import common
from .features import CAPTIONS_INDEX
from .sources import DEFAULT_CAPTION, VideoFolderBackgrounds

log = logging.getLogger("training.cache_text")


def caption_file_name(caption: str) -> str:
    return f"text_{hashlib.sha256(caption.encode()).hexdigest()[:16]}.safetensors"


def write_caption_cache(encode: Callable[[str], list], captions: list[str], out: Path) -> Path:
    """``encode(caption)`` → CONDITIONING, saved per caption; returns the captions.json path.

    Captions already in an existing index are kept and not encoded again.
    """
    from omnimatte_core.text_embeds import save_conditioning

    out.mkdir(parents=True, exist_ok=True)
    index_path = out / CAPTIONS_INDEX
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    for caption in sorted(set(captions)):
        if caption in index and (out / index[caption]).is_file():
            continue
        name = caption_file_name(caption)
        save_conditioning(encode(caption), out / name)
        index[caption] = name
        log.info("cached %r → %s", caption, name)
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True))
    return index_path


def comfy_text_encoder(path: str) -> Callable[[str], list]:
    """umt5-xxl through ComfyUI's loader; returns caption → CONDITIONING as CLIPTextEncode gives it."""
    import comfy.sd

    clip = comfy.sd.load_clip(ckpt_paths=[path], clip_type=comfy.sd.CLIPType.WAN)
    return lambda caption: clip.encode_from_tokens_scheduled(clip.tokenize(caption))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.cache_text", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text-encoder", required=True, help="umt5_xxl .safetensors (as CLIPLoader, type wan)")
    p.add_argument("--out", type=Path, required=True, help="folder to pass to training as --text-embeds")
    p.add_argument("--backgrounds", default=None, help="background video folder whose captions to cache")
    p.add_argument("--caption", action="append", default=[], help="extra caption (repeatable)")
    p.add_argument("--threads", type=int, default=None)
    return p


def main(argv: list[str] | None = None) -> Path:
    args = common.start_cli(parser(), argv)
    captions = [DEFAULT_CAPTION, *args.caption]  # procedural backgrounds use the default caption
    if args.backgrounds:
        captions += VideoFolderBackgrounds(args.backgrounds).captions()
    return write_caption_cache(comfy_text_encoder(args.text_encoder), captions, args.out)


if __name__ == "__main__":
    main()
