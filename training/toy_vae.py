"""``python -m training.toy_vae --output DIR``: train the toy world's Wan 2.1 VAE (docs/toy_world.md).

The model is ComfyUI's own ``WanVAE`` class (``VAELoader`` loads the result on v0.33+), started
as a hand-set linear codec (``training.toy_vae_init``) and trained for reconstruction on
random crops of toy clips through the real chunked ``encode``/``decode`` path. Resumable
(``--resume``); at the end the latent affine is re-fitted so ``Wan21.process_in`` gives
zero-mean, unit-std channels, and ``toy_wan_vae.safetensors`` is written with its metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import common
from .loop import optimizer_step, warmup_cosine
from .toy_data import held_out_clips, train_clips

log = logging.getLogger("training.toy_vae")
FILE_NAME = "toy_wan_vae.safetensors"
CODEC_LR_SCALE = 0.02
MATTE_SHARE = 0.25  # crops of GT alpha mattes (grey, 3 channels): the VAE encodes them for the alpha row


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.toy_vae", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, required=True, help="run folder: checkpoints, logs, the VAE file")
    p.add_argument("--dim", type=int, default=8, help="VAE width (ComfyUI reads it from the file)")
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=64, help="square crop side (multiple of 16)")
    p.add_argument("--crop-frames", type=int, default=9, help="frames per crop (4n+1)")
    p.add_argument("--codec-lr-scale", type=float, default=CODEC_LR_SCALE,
                   help="learning-rate factor for the hand-set codec's weights")
    p.add_argument("--detail-lr-scale", type=float, default=1.0,
                   help="learning-rate factor for the residual branches and attention (0 keeps them at zero)")
    p.add_argument("--matte-share", type=float, default=MATTE_SHARE,
                   help="share of crops taken from ground-truth alpha mattes instead of the video")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--val-clips", type=int, default=4)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-after", type=int, default=None, help="leave after this many steps (checkpoint written)")
    p.add_argument("--threads", type=int, default=None)
    return p


def is_detail_parameter(name: str) -> bool:
    """Residual branches and attention blocks: they start at zero and learn the detail the codec lacks.

    Everything else is the hand-set codec; it trains at ``CODEC_LR_SCALE`` × the rate, since
    Adam's per-weight steps would otherwise drown its exact zeros in noise (measured: held-out
    PSNR fell from 26.1 to 25.0 dB in 250 steps at one rate for all).
    """
    return ".residual." in name or ".middle.1." in name


def to_vae_space(video: torch.Tensor) -> torch.Tensor:
    """[B, N, H, W, 3] in [0, 1] → [B, 3, N, H, W] in [−1, 1] (what ComfyUI's VAE feeds WanVAE)."""
    return video.permute(0, 4, 1, 2, 3) * 2 - 1


def psnr(a: torch.Tensor, b: torch.Tensor, peak: float = 2.0) -> float:
    return 10 * math.log10(peak ** 2 / max(float((a - b).pow(2).mean()), 1e-12))


def random_crops(clips, gen: torch.Generator, batch: int, crop: int, frames: int, step: int,
                 matte_share: float = MATTE_SHARE) -> torch.Tensor:
    """``batch`` random crops [B, 3, frames, crop, crop] from freshly rendered training clips."""
    out = []
    for b in range(batch):
        clip = clips.clip(step * batch + b)
        matte = float(torch.rand(1, generator=gen)) < matte_share
        video = clip.gt_alpha[..., None].expand(-1, -1, -1, 3) if matte else clip.video  # [N, H, W, 3]
        n, h, w, _ = video.shape
        t = int(torch.randint(0, (n - frames) // 4 + 1, (1,), generator=gen)) * 4
        y = int(torch.randint(0, h - crop + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - crop + 1, (1,), generator=gen))
        out.append(video[t:t + frames, y:y + crop, x:x + crop])
    return to_vae_space(torch.stack(out))


def reconstruction_loss(model, x: torch.Tensor) -> torch.Tensor:
    y = model.decode(model.encode(x))
    return (y - x).pow(2).mean() + 0.5 * (y - x).abs().mean()


@torch.no_grad()
def evaluate(model, videos: torch.Tensor, mattes: torch.Tensor | None = None) -> dict:
    """Held-out PSNR (whole clips, [0, 1] scale) of encode → decode; ``mattes`` [B, N, H, W] too."""
    x = to_vae_space(videos)
    y = model.decode(model.encode(x)).clamp(-1, 1)
    result = {"psnr": round(psnr(y, x), 3),
              "psnr_frames": [round(psnr(y[:, :, i], x[:, :, i]), 2) for i in range(x.shape[2])]}
    if mattes is not None:
        m = to_vae_space(mattes[..., None].expand(*mattes.shape, 3))
        result["psnr_alpha"] = round(psnr(model.decode(model.encode(m)).clamp(-1, 1), m), 3)
    return result


@torch.no_grad()
def latent_stats(model, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std [16] of the raw ``encode`` output over ``videos``."""
    z = model.encode(to_vae_space(videos))  # [B, 16, T, h, w]
    flat = z.transpose(0, 1).flatten(1)
    return flat.mean(1), flat.std(1)


@torch.no_grad()
def normalise_latents_(model, videos: torch.Tensor) -> dict:
    """Re-fit conv1/conv2 so the encoded latents, after Wan21.process_in, are ≈ N(0, 1) per channel.

    The composition conv2 ∘ conv1 is unchanged up to float error, so reconstructions do not move.
    """
    from .toy_vae_init import wan21_latent_stats

    wan_mean, wan_std = wan21_latent_stats()
    mean, std = latent_stats(model, videos)
    scale = torch.where(std > 1e-4, wan_std / std.clamp(min=1e-4), torch.ones_like(std))  # [16]
    shift = wan_mean - scale * mean  # unused channels: moved to Wan's mean (→ 0 after process_in)
    w1, b1 = model.conv1.weight[:16, :, 0, 0, 0], model.conv1.bias[:16]
    model.conv1.weight[:16, :, 0, 0, 0] = scale[:, None] * w1
    model.conv1.bias[:16] = scale * b1 + shift
    w2 = model.conv2.weight[:, :, 0, 0, 0]
    model.conv2.bias.add_(-(w2 @ (shift / scale)))
    model.conv2.weight[:, :, 0, 0, 0] = w2 / scale[None, :]
    new_mean, new_std = latent_stats(model, videos)
    unit_mean, unit_std = (new_mean - wan_mean) / wan_std, new_std / wan_std
    return {"channel_mean": [round(float(v), 3) for v in unit_mean],
            "channel_std": [round(float(v), 3) for v in unit_std]}


class VaeTrainer:
    def __init__(self, args: argparse.Namespace):
        from .toy_vae_init import linear_codec_vae

        self.args = args
        self.model = linear_codec_vae(args.dim, args.seed)
        self.names = [n for n, _ in self.model.named_parameters()]
        self.params = [p for _, p in self.model.named_parameters()]
        fast = [p for n, p in self.model.named_parameters() if is_detail_parameter(n)]
        slow = [p for n, p in self.model.named_parameters() if not is_detail_parameter(n)]
        self.optimizer = torch.optim.Adam([{"params": fast, "lr_scale": args.detail_lr_scale},
                                           {"params": slow, "lr_scale": args.codec_lr_scale}], lr=args.lr)
        self.clips = train_clips(args.seed)
        held = held_out_clips(args.val_clips)
        self.held_out = torch.stack([c.video for c in held])
        self.held_out_mattes = torch.stack([c.gt_alpha for c in held])

    def settings(self) -> dict:
        a = self.args
        return {"dim": a.dim, "iterations": a.iterations, "lr": a.lr, "batch": a.batch, "crop": a.crop,
                "crop_frames": a.crop_frames, "seed": a.seed, "codec_lr_scale": a.codec_lr_scale,
                "detail_lr_scale": a.detail_lr_scale,
                "matte_share": a.matte_share}

    def run(self) -> Path | None:
        a = self.args
        a.output.mkdir(parents=True, exist_ok=True)
        ckpt_dir, step = a.output / "checkpoints", 0
        if a.resume:
            step = ckpt.resume_step(ckpt_dir, self.params, self.names, self.optimizer)
        else:
            self._log("validation.jsonl", {"step": 0, **evaluate(self.model, self.held_out, self.held_out_mattes)})
        stop = a.iterations if a.stop_after is None else min(a.iterations, step + a.stop_after)
        while step < stop:
            started = time.perf_counter()
            gen = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
            x = random_crops(self.clips, gen, a.batch, a.crop, a.crop_frames, step, a.matte_share)
            for group in self.optimizer.param_groups:
                group["lr"] = warmup_cosine(a.lr, step, a.iterations, warmup=200) * group["lr_scale"]
            loss = optimizer_step(self.optimizer, self.params, reconstruction_loss(self.model, x))
            step += 1
            self._log("loss.jsonl", {"step": step, "loss": round(loss, 6),
                                     "seconds": round(time.perf_counter() - started, 3)})
            if step % a.checkpoint_every == 0 or step == stop:
                ckpt.save_checkpoint(ckpt_dir, step, self.params, self.names, self.optimizer, self.settings())
            if step % a.val_every == 0 or step == a.iterations:
                result = evaluate(self.model, self.held_out, self.held_out_mattes)
                self._log("validation.jsonl", {"step": step, **result})
                log.info("step %d: held-out PSNR %.2f dB", step, result["psnr"])
        if step < a.iterations:
            log.info("stopped at step %d of %d; continue with --resume", step, a.iterations)
            return None
        return self.export()

    def export(self) -> Path:
        from safetensors.torch import save_file

        stats_clips = torch.stack([c.video for c in (self.clips.clip(i) for i in range(8))])
        stats = normalise_latents_(self.model, stats_clips)
        metrics = {**evaluate(self.model, self.held_out, self.held_out_mattes), "latent_after_process_in": stats}
        path = self.args.output / FILE_NAME
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(path), {"training": json.dumps(self.settings())})
        (self.args.output / "metrics.json").write_text(json.dumps(metrics, indent=1))
        log.info("wrote %s: held-out PSNR %.2f dB", path, metrics["psnr"])
        return path

    def _log(self, name: str, record: dict) -> None:
        ckpt.append_jsonl(self.args.output / name, record)


def main(argv: list[str] | None = None) -> Path | None:
    args = common.start_cli(parser(), argv)
    return VaeTrainer(args).run()


if __name__ == "__main__":
    main()
