"""Text and CLIP-vision features, so the 11 GB text encoder is never held while training.

Text: cached CONDITIONING files (``omnimatte_core.text_embeds`` format, as the
OmnimatteSaveTextEmbeds node writes them). ``--text-embeds`` is either one file used for every
clip, or a folder holding ``captions.json`` (``{caption: file name}``) written by
``python -m training.cache_text``.

CLIP vision (frame 0 of each clip, as Casper): a CLIP-H model file loaded with ComfyUI's
``comfy.clip_vision.load`` (0.6 B parameters, held during training), or ``random:SEED``:
seeded random features shaped like CLIP-H's output, for tests and smoke runs only.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from omnimatte_core.text_embeds import load_conditioning

CAPTIONS_INDEX = "captions.json"
CLIP_VISION_TOKENS, CLIP_VISION_DIM = 257, 1280


class TextEmbeddings:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._cache: dict[str, torch.Tensor] = {}
        if self.path.is_dir():
            index = self.path / CAPTIONS_INDEX
            if not index.is_file():
                raise ValueError(f"{self.path} has no {CAPTIONS_INDEX}. Write it with `python -m training.cache_text "
                                 f"--out {self.path} ...`, or pass one embedding file with --text-embeds FILE")
            self.index: dict[str, str] | None = json.loads(index.read_text())
        elif self.path.is_file():
            self.index = None
        else:
            raise ValueError(f"--text-embeds {self.path} does not exist. Cache the captions first "
                             "(python -m training.cache_text) or pass an OmnimatteSaveTextEmbeds file")

    def tokens(self, caption: str) -> torch.Tensor:
        """Text tokens [1, L, 4096] for ``caption``."""
        if self.index is None:
            key, file = "", self.path
        else:
            if caption not in self.index:
                raise ValueError(f"caption {caption!r} is not in {self.path / CAPTIONS_INDEX}. Re-run "
                                 "python -m training.cache_text over the same background folder")
            key, file = caption, self.path / self.index[caption]
        if key not in self._cache:
            self._cache[key] = load_conditioning(file)[0][0].float()
        return self._cache[key]

    def check(self, captions: list[str]) -> None:
        """Fail before training starts if any caption of the data has no cached embedding."""
        for caption in captions:
            self.tokens(caption)


def pad_tokens(tokens: list[torch.Tensor]) -> torch.Tensor:
    """[1, L_i, D] × B → [B, max L, D], zero-padded like Wan's own text padding."""
    length = max(t.shape[1] for t in tokens)
    return torch.cat([torch.nn.functional.pad(t, (0, 0, 0, length - t.shape[1])) for t in tokens], dim=0)


class ClipVisionFeatures:
    def __init__(self, spec: str):
        self.spec = spec
        self.model = None
        if spec.startswith("random:"):
            self.seed = int(spec.split(":", 1)[1])
        else:
            import comfy.clip_vision

            if not Path(spec).is_file():
                raise ValueError(f"--clip-vision {spec} does not exist; pass clip_vision_h.safetensors "
                                 "(or random:SEED for smoke tests only)")
            self.model = comfy.clip_vision.load(spec)

    def features(self, first_frame: torch.Tensor, index: int) -> torch.Tensor:
        """Frame 0 [H, W, 3] → penultimate hidden states [1, 257, 1280] (random: seeded by clip index)."""
        if self.model is None:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            return torch.randn(1, CLIP_VISION_TOKENS, CLIP_VISION_DIM, generator=gen)
        out = self.model.encode_image(first_frame[None], crop=False)  # Casper feeds the whole frame
        return out.penultimate_hidden_states.float().cpu()
