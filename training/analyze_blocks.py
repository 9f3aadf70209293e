"""``python -m training.analyze_blocks``: the Effects-Association score C_b per Wan block.

Reading (DESIGN §1, "consistent reading"): for block b and frame f, S_{f,b}(y) is the mean,
over object query tokens p (and heads), of the self-attention weight W[p, y];
C_b = Σ_f Σ_y S_{f,b}(y)·Me_f(y), normalised over blocks. Me is the effect region: binarised
GT alpha outside the dilated object mask. Pixel masks map to tokens by pooling 16×16 pixels
(VAE 8 × patch 2) and 4 frames (the VAE's time stride). The attention maps are taken from the
frozen base model (no expert) while it denoises the clean-background latent at a few σ, and
computed in query chunks so only ``chunk × L`` weights per head exist at once; the model's
own attention output is returned unchanged.

Suggested K: the blocks after the last trough of C_b over depth (the effect-suppression
stage, trough included) carry the Effect Expert's LoRA.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from omnimatte_core.trimask import pack_trimask

from . import common

log = logging.getLogger("training.analyze_blocks")
TOKEN_PIXELS = 16  # VAE stride 8 × patch 2


def token_weights(mask: torch.Tensor) -> torch.Tensor:
    """Pixel mask [4n+1, H, W] (bool or float) → share of each token covered [(n+1)·H/16·W/16], Wan's token order."""
    packed = pack_trimask(mask.float())[0].mean(0)  # [T, H, W]: 4 frames per latent frame (frame 0 repeated)
    pooled = F.avg_pool2d(packed[:, None], TOKEN_PIXELS)[:, 0]  # [T, H/16, W/16]
    return pooled.flatten()


class AttentionProbe:
    """An ``optimized_attention_override`` that accumulates C_b from each block's self-attention."""

    def __init__(self, num_blocks: int, query_weights: torch.Tensor, effect_weights: torch.Tensor, chunk: int):
        self.query_index = torch.nonzero(query_weights >= 0.5).flatten()
        if self.query_index.numel() == 0:
            self.query_index = torch.nonzero(query_weights > 0).flatten()
        self.effect = effect_weights
        self.chunk = chunk
        self.scores = torch.zeros(num_blocks, dtype=torch.float64)
        self._seen: set[int] = set()
        self._calls = 0

    def new_forward(self) -> None:
        self._seen = set()
        self._calls = 0

    def __call__(self, func, q, k, v, *args, **kwargs):
        options = kwargs.get("transformer_options") or {}
        is_self = q.shape[1] == k.shape[1] == self.effect.numel() and not kwargs.get("skip_reshape", False)
        # the first attention call of a Wan block is its self-attention; hosts without "block_index"
        # (v0.3.64's Wan) run one self-attention per block, in order
        block = options.get("block_index", self._calls if is_self else None)
        if is_self and block not in self._seen:
            self._seen.add(block)
            self._calls += 1
            self.scores[block] += self._association(q, k, kwargs["heads"])
        return func(q, k, v, *args, **kwargs)

    def _association(self, q: torch.Tensor, k: torch.Tensor, heads: int) -> float:
        """Σ_y mean_p W[p, y]·Me(y) for q, k [B, L, heads·d]; softmax rows computed ``chunk`` queries at a time."""
        b, length, width = q.shape
        d = width // heads
        k_h = k.view(b, length, heads, d).transpose(1, 2).float()  # [B, h, L, d]
        effect = self.effect.to(q.device, torch.float32)
        total = 0.0
        for start in range(0, self.query_index.numel(), self.chunk):
            idx = self.query_index[start:start + self.chunk].to(q.device)
            q_h = q[:, idx].view(b, -1, heads, d).transpose(1, 2).float()  # [B, h, c, d]
            weights = torch.softmax(q_h @ k_h.transpose(-1, -2) / math.sqrt(d), dim=-1)  # [B, h, c, L]
            total += float((weights @ effect).sum())  # Σ over queries, heads, batch of Σ_y W·Me
        return total / (self.query_index.numel() * heads * b)


def find_troughs(scores: list[float]) -> list[int]:
    """Interior local minima of the curve over depth."""
    return [i for i in range(1, len(scores) - 1) if scores[i] < scores[i - 1] and scores[i] <= scores[i + 1]]


def suggest_k(scores: list[float]) -> tuple[int, str]:
    troughs = find_troughs(scores)
    if not troughs:
        k = math.ceil(len(scores) / 3)
        return k, f"no trough in C_b; fell back to a third of the blocks (K={k})"
    last = troughs[-1]
    return len(scores) - last, f"blocks from the last trough (block {last}) to the end"


def analyze(inputs: common.Inputs, clips: int, sigmas: list[float], chunk: int) -> dict:
    import comfy.model_management

    from .branch_model import transformer_options

    model = inputs.base
    num_blocks = len(model.model.diffusion_model.blocks)
    comfy.model_management.load_models_gpu([model])
    totals = torch.zeros(num_blocks, dtype=torch.float64)
    used = 0
    for index in range(clips):
        clip, enc = common.encoded_clip(inputs, inputs.held_out, index)
        effect = token_weights(clip.shadow_region)
        if effect.sum() == 0:
            log.info("clip %d has no effect region; skipped", index)
            continue
        probe = AttentionProbe(num_blocks, token_weights(clip.object_mask), effect, chunk)
        gen = torch.Generator().manual_seed(index)
        for sigma in sigmas:
            noise = torch.randn(enc.background.shape, generator=gen)
            x_t = ((1 - sigma) * enc.background + sigma * noise).to(inputs.device)
            s = torch.full((1,), sigma, device=inputs.device)
            c_concat = model.model.concat_cond(noise=x_t, concat_latent_image=enc.video_latent.to(inputs.device),
                                               concat_mask=enc.concat_mask.to(inputs.device), device=inputs.device)
            options = transformer_options(model)
            options["optimized_attention_override"] = probe
            probe.new_forward()
            with torch.no_grad():
                model.model.apply_model(x_t, s, c_concat=c_concat, c_crossattn=enc.context.to(inputs.device),
                                        clip_fea=None if enc.clip_fea is None else enc.clip_fea.to(inputs.device),
                                        transformer_options=options)
        totals += probe.scores
        used += 1
    if used == 0:
        raise SystemExit("no analysed clip had an effect region; raise --clips or keep --shadow-prob 1")
    normalised = (totals / totals.sum()).tolist() if totals.sum() > 0 else totals.tolist()
    k, reason = suggest_k(normalised)
    return {"scores": normalised, "raw": totals.tolist(), "troughs": find_troughs(normalised), "suggested_k": k,
            "effect_blocks": list(range(num_blocks - k, num_blocks)), "reason": reason, "clips": used,
            "sigmas": sigmas, "num_blocks": num_blocks}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.analyze_blocks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_model_args(p)
    common.add_data_args(p, shadow_prob=1.0)
    p.add_argument("--output", type=Path, required=True, help="folder for block_scores.json and block_scores.png")
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    p.add_argument("--chunk", type=int, default=256, help="query tokens per softmax chunk (memory knob)")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = common.start_cli(parser(), argv)
    from .plotting import line_plot

    result = analyze(common.load_inputs(args, "fp32"), args.clips, args.sigmas, args.chunk)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "block_scores.json").write_text(json.dumps(result, indent=1))
    line_plot(args.output / "block_scores.png", list(range(result["num_blocks"])), {"C_b": result["scores"]},
              f"Effects-Association score per block (suggested K = {result['suggested_k']})", "block", "C_b",
              marks=result["troughs"])
    log.info("suggested K = %d (%s); wrote %s", result["suggested_k"], result["reason"], args.output)
    return result


if __name__ == "__main__":
    main()
