"""Text and CLIP-vision features, so the 11 GB text encoder is never held while training.

Text: cached CONDITIONING files (``omnimatte_core.text_embeds`` format, as the
OmnimatteSaveTextEmbeds node writes them). ``--text-embeds`` is either one file used for every
clip, or a folder holding ``captions.json`` (``{caption: file name}``) written by
``python -m training.cache_text``.

CLIP vision (frame 0 of each clip, as Casper): a CLIP-H model file loaded with ComfyUI's
``comfy.clip_vision.load``, or ``random:SEED``: seeded random features shaped like CLIP-H's
output, for tests and smoke runs only. With a cache folder (``--clip-vision-cache``) features
are stored by the content of frame 0 and the model file's name: a run that finds every clip
there (the second expert on the same data seed, a resume, validation) never loads CLIP-H;
the model is loaded on the first miss only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from safetensors.torch import load_file, save_file

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
    def __init__(self, spec: str, cache_dir: str | Path | None = None):
        self.spec = spec
        self.model = None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.misses = 0
        if spec.startswith("random:"):
            self.seed = int(spec.split(":", 1)[1])
        elif not Path(spec).is_file():
            raise ValueError(f"--clip-vision {spec} does not exist; pass clip_vision_h.safetensors "
                             "(or random:SEED for smoke tests only)")

    def features(self, first_frame: torch.Tensor, index: int) -> torch.Tensor:
        """Frame 0 [H, W, 3] → penultimate hidden states [1, 257, 1280] (random: seeded by clip index)."""
        if self.spec.startswith("random:"):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
            return torch.randn(1, CLIP_VISION_TOKENS, CLIP_VISION_DIM, generator=gen)
        cached = self._cache_path(first_frame)
        if cached is not None and cached.is_file():
            return load_file(str(cached))["penultimate"]
        features = self._encode(first_frame)
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            save_file({"penultimate": features.contiguous()}, str(cached) + ".part")
            Path(str(cached) + ".part").replace(cached)
        return features

    def _encode(self, first_frame: torch.Tensor) -> torch.Tensor:
        self.misses += 1
        if self.model is None:
            import comfy.clip_vision

            self.model = comfy.clip_vision.load(self.spec)
        out = self.model.encode_image(first_frame[None], crop=False)  # Casper feeds the whole frame
        return out.penultimate_hidden_states.float().cpu()

    def _cache_path(self, first_frame: torch.Tensor) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha1(Path(self.spec).name.encode())
        digest.update(str(tuple(first_frame.shape)).encode())
        digest.update(first_frame.detach().float().cpu().contiguous().numpy().tobytes())
        return self.cache_dir / f"{digest.hexdigest()}.safetensors"
