"""``python -m training.toy_vae --output DIR``: train the toy world's Wan 2.1 VAE (docs/toy_world.md).

The model is ComfyUI's own ``WanVAE`` class (``VAELoader`` loads the result on v0.33+), started
as a hand-set linear codec (``training.toy_vae_init``) or from noise (``--init random``) and
trained for reconstruction of toy videos *and* ground-truth alpha mattes (as grey video: the
alpha row of the method goes through this VAE) on random crops of a pre-rendered pool, through
the real chunked ``encode``/``decode`` path, on ComfyUI's device (a GPU when there is one).
Resumable (``--resume``); ``--time-budget`` fits the step count to a GPU lease. At the end the
latent affine is re-fitted so ``Wan21.process_in`` gives zero-mean, unit-std channels, and
``toy_wan_vae.safetensors`` is written with its round-trip ceiling (``ceiling_metrics``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch

from omnimatte_core.quantise import to_uint8

from . import checkpoint as ckpt
from . import common
from .loop import TimeBudget, optimizer_step, warmup_cosine
from .toy_data import FRAMES, as_toy_clip, held_out_clips, train_clips
from .toy_vae_widen import widen_into_

log = logging.getLogger("training.toy_vae")
FILE_NAME = "toy_wan_vae.safetensors"
CODEC_LR_SCALE = 0.02
MATTE_SHARE = 0.5  # crops of GT alpha mattes (grey, 3 channels): the VAE encodes them for the alpha row
CEILING_CLIPS = 6  # held-out clips 0–5: the toy table's ceiling row measures the same ones


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.toy_vae", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, required=True, help="run folder: checkpoints, logs, the VAE file")
    p.add_argument("--dim", type=int, default=16, help="VAE width (ComfyUI reads it from the file)")
    p.add_argument("--init", choices=("codec", "random"), default="codec",
                   help="codec: the hand-set linear codec (training.toy_vae_init); random: fan-in noise, "
                        "residual branches at zero")
    p.add_argument("--pool", type=int, default=256, help="training clips rendered once; crops are drawn from them")
    p.add_argument("--workers", type=int, default=0, help="processes rendering the pool (0: this one)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit --iterations to this wall time after a 30-step probe (a GPU lease)")
    p.add_argument("--iterations", type=int, default=3000)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--crop", type=int, default=64, help="square crop side (multiple of 16)")
    p.add_argument("--crop-frames", type=int, default=FRAMES,
                   help="frames per crop (4n+1). Whole toy clips (17) by default: a VAE trained on 9-frame crops "
                        "decodes latent frames 3-4 of a 17-frame clip at 13-20 dB, because its causal "
                        "receptive field never saw that much history")
    p.add_argument("--codec-lr-scale", type=float, default=CODEC_LR_SCALE,
                   help="learning-rate factor for the hand-set codec's weights")
    p.add_argument("--detail-lr-scale", type=float, default=1.0,
                   help="learning-rate factor for the residual branches and attention (0 keeps them at zero)")
    p.add_argument("--matte-share", type=float, default=0.5,
                   help="share of crops taken from ground-truth alpha mattes instead of the video")
    p.add_argument("--soft-weight", type=float, default=0.0,
                   help="extra L1 weight on a matte crop's soft pixels (0.02 < alpha < 0.98: shadows, edges), "
                        "which a plain loss leaves biased dark")
    p.add_argument("--init-from", type=Path, default=None, metavar="VAE_FILE",
                   help="start from an exported toy VAE (fine-tune); its width must equal --dim")
    p.add_argument("--widen-from", type=Path, default=None, metavar="VAE_FILE",
                   help="start from a narrower exported toy VAE, widened to --dim so it decodes as before "
                        "(training.toy_vae_widen)")
    p.add_argument("--export-dtype", choices=("fp32", "fp16"), default="fp32", help="precision of the finished "
                   "file (checkpoints stay fp32); fp16 halves it, its metrics measured on the rounded weights")
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


def render_pool(clips, count: int, workers: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` training clips as uint8: videos [P, N, H, W, 3] and their ground-truth mattes [P, N, H, W]."""
    from .common import render_ahead

    videos, mattes = [], []
    for _, clip in render_ahead(clips, list(range(count)), workers):
        videos.append(to_uint8(clip.video))
        mattes.append(to_uint8(clip.gt_alpha))
    return torch.stack(videos), torch.stack(mattes)


def random_crops(pool: tuple[torch.Tensor, torch.Tensor], gen: torch.Generator, batch: int, crop: int, frames: int,
                 matte_share: float = MATTE_SHARE) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` random crops [B, 3, frames, crop, crop] in [−1, 1] from the pool, flipped at random,
    and which of them are mattes (bool [B]).

    A matte crop is the ground-truth alpha as grey video, as the alpha row is decoded. Crops start
    on a latent-frame boundary (frame 4k), so each crop's first frame is alone as in a whole clip.
    """
    videos, mattes = pool
    out, is_matte = [], []
    for _ in range(batch):
        i = int(torch.randint(0, videos.shape[0], (1,), generator=gen))
        matte = float(torch.rand(1, generator=gen)) < matte_share
        video = mattes[i][..., None].expand(-1, -1, -1, 3) if matte else videos[i]  # [N, H, W, 3] uint8
        n, h, w, _ = video.shape
        t = int(torch.randint(0, (n - frames) // 4 + 1, (1,), generator=gen)) * 4
        y = int(torch.randint(0, h - crop + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - crop + 1, (1,), generator=gen))
        piece = video[t:t + frames, y:y + crop, x:x + crop]
        flips = [d for d, flip in zip((1, 2), torch.rand(2, generator=gen) < 0.5) if flip]
        out.append(piece.flip(flips) if flips else piece)
        is_matte.append(matte)
    return to_vae_space(torch.stack(out).float() / 255), torch.tensor(is_matte, device=videos.device)


SOFT_LOW, SOFT_HIGH = 0.02, 0.98  # a matte pixel strictly between these is soft (shadow, smoke, edge)


def soft_matte_pixels(x: torch.Tensor, is_matte: torch.Tensor) -> torch.Tensor:
    """float [B, 3, T, H, W]: 1 on the soft pixels of matte crops (x in [−1, 1]), 0 elsewhere."""
    value = (x + 1) / 2
    soft = (value > SOFT_LOW) & (value < SOFT_HIGH)
    return (soft & is_matte.view(-1, 1, 1, 1, 1)).float()


def reconstruction_loss(model, x: torch.Tensor, is_matte: torch.Tensor | None = None,
                        soft_weight: float = 0.0) -> torch.Tensor:
    """L2 + L1: the L1 term keeps matte edges sharp (alpha MAE is the measure that matters); with
    ``soft_weight`` an extra L1 on the soft pixels of matte crops, which are few and otherwise decode dark."""
    y = model.decode(model.encode(x))
    loss = (y - x).pow(2).mean() + 0.5 * (y - x).abs().mean()
    if soft_weight and is_matte is not None and bool(is_matte.any()):
        soft = soft_matte_pixels(x, is_matte)
        loss = loss + soft_weight * ((y - x).abs() * soft).sum() / soft.sum().clamp(min=1.0)
    return loss


@torch.no_grad()
def round_trip(model, frames: torch.Tensor) -> torch.Tensor:
    """Frames [N, H, W, 3] in [0, 1] → encode → decode → [N, H, W, 3] in [0, 1] (on the model's device)."""
    device = next(model.parameters()).device
    x = to_vae_space(frames[None].to(device))
    return ((model.decode(model.encode(x)).clamp(-1, 1) + 1) / 2)[0].permute(1, 2, 3, 0).float().cpu()


@torch.no_grad()
def round_weights_(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Round the floating weights through ``dtype`` in place: what is measured is what a ``dtype`` file decodes."""
    for tensor in (t for t in model.state_dict().values() if t.is_floating_point()):
        tensor.copy_(tensor.to(dtype))


@torch.no_grad()
def ceiling_metrics(model, clips) -> dict:
    """What any method decoded by this VAE can reach at best, on ToyClips (8-bit, as shipped clips are).

    The ground-truth alpha (as grey video) and plate go through the round trip and are measured as
    ``benchmarks.toy_table`` measures a method: alpha MAE on the object and on the shadow alone, plate
    PSNR inside the removed region (object ∪ shadow) and outside; and the video's own round trip.
    """
    from omnimatte_core.metrics import region_mae, region_psnr

    rows = []
    for clip in clips:
        alpha = round_trip(model, clip.gt_alpha[..., None].expand(*clip.gt_alpha.shape, 3)).mean(-1)
        plate = round_trip(model, clip.gt_background)
        removed = clip.gt_alpha >= 0.1
        rows.append({"alpha_mae_object": region_mae(alpha, clip.gt_alpha, clip.object_region),
                     "alpha_mae_shadow": region_mae(alpha, clip.gt_alpha, clip.shadow_only),
                     "video_psnr": region_psnr(round_trip(model, clip.video), clip.video),
                     "plate_psnr_region": region_psnr(plate, clip.gt_background, removed),
                     "plate_psnr_outside": region_psnr(plate, clip.gt_background, ~removed)})
    return {key: round(sum(v for v in values if v is not None) / max(1, sum(v is not None for v in values)), 4)
            for key, values in ((k, [r[k] for r in rows]) for k in rows[0])}


def ceiling_clips(count: int = CEILING_CLIPS) -> list:
    return [as_toy_clip(c) for c in held_out_clips(count)]


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
    flat = z.transpose(0, 1).flatten(1).float().cpu()
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
    device = model.conv1.weight.device
    scale, shift = scale.to(device), shift.to(device)
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


def build_vae(init: str, dim: int, seed: int):
    """A WanVAE of width ``dim``: the hand-set codec, or fan-in noise with every residual branch and
    attention block at zero (so the net starts as its plain path and training adds the rest)."""
    from comfy.ldm.wan import vae as wan_vae

    from .toy_vae_init import _fill_random_, _zero_, linear_codec_vae, set_latent_affine_

    if init == "codec":
        return linear_codec_vae(dim, seed)
    model = wan_vae.WanVAE(dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                           temperal_downsample=[False, True, True])
    _fill_random_(model, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, wan_vae.ResidualBlock):
                _zero_(m.residual[-1].weight, m.residual[-1].bias)
            elif isinstance(m, wan_vae.AttentionBlock):
                _zero_(m.proj.weight, m.proj.bias)
        set_latent_affine_(model, torch.zeros(16), torch.ones(16))
    return model


def load_exported_(model, path: Path) -> None:
    """Load an exported toy VAE into ``model`` (same width), or stop with what is wrong."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and v.shape != expected[k].shape]
    if set(state) != set(expected) or wrong:
        raise SystemExit(f"--init-from {path}: not a toy VAE of this width (--dim); "
                         f"{len(wrong)} tensors of another shape, {len(set(expected) - set(state))} missing")
    model.load_state_dict(state)


class VaeTrainer:
    def __init__(self, args: argparse.Namespace):
        import comfy.model_management

        self.args = args
        self.device = comfy.model_management.get_torch_device()
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True  # crops have one shape: let cuDNN pick its fastest convs
        self.model = build_vae(args.init, args.dim, args.seed)
        if args.init_from is not None:
            load_exported_(self.model, args.init_from)
        elif args.widen_from is not None:
            widen_into_(self.model, args.widen_from, args.seed)
        self.model = self.model.to(self.device)
        self.names = [n for n, _ in self.model.named_parameters()]
        self.params = [p for _, p in self.model.named_parameters()]
        codec_scale = args.codec_lr_scale if args.init == "codec" else 1.0
        fast = [p for n, p in self.model.named_parameters() if is_detail_parameter(n)]
        slow = [p for n, p in self.model.named_parameters() if not is_detail_parameter(n)]
        self.optimizer = torch.optim.Adam([{"params": fast, "lr_scale": args.detail_lr_scale},
                                           {"params": slow, "lr_scale": codec_scale}], lr=args.lr)
        self.clips = train_clips(args.seed)
        held = held_out_clips(args.val_clips)
        self.held_out = torch.stack([c.video for c in held]).to(self.device)
        self.held_out_mattes = torch.stack([c.gt_alpha for c in held]).to(self.device)

    def settings(self) -> dict:
        a = self.args
        return {"dim": a.dim, "init": a.init, "iterations": a.iterations, "lr": a.lr, "batch": a.batch,
                "crop": a.crop, "crop_frames": a.crop_frames, "seed": a.seed, "pool": a.pool,
                "codec_lr_scale": a.codec_lr_scale, "detail_lr_scale": a.detail_lr_scale,
                "matte_share": a.matte_share, "soft_weight": a.soft_weight,
                "init_from": None if a.init_from is None else str(a.init_from),
                "widen_from": None if a.widen_from is None else str(a.widen_from), "device": self.device.type,
                "export_dtype": a.export_dtype}

    def run(self) -> Path | None:
        a = self.args
        a.output.mkdir(parents=True, exist_ok=True)
        ckpt_dir, step = a.output / "checkpoints", 0
        if a.resume:
            step = ckpt.resume_step(ckpt_dir, self.params, self.names, self.optimizer)
        else:
            self._log("validation.jsonl", {"step": 0, **evaluate(self.model, self.held_out, self.held_out_mattes)})
        started = time.perf_counter()
        pool = tuple(t.to(self.device) for t in render_pool(self.clips, a.pool, a.workers))
        log.info("rendered %d training clips in %.1f s", a.pool, time.perf_counter() - started)
        budget, first = TimeBudget(a.time_budget), step
        stop = a.iterations if a.stop_after is None else min(a.iterations, step + a.stop_after)
        while step < stop:
            started = time.perf_counter()
            gen = torch.Generator().manual_seed(a.seed * 1_000_003 + step)
            x, is_matte = random_crops(pool, gen, a.batch, a.crop, a.crop_frames, a.matte_share)
            for group in self.optimizer.param_groups:
                group["lr"] = warmup_cosine(a.lr, step, a.iterations, warmup=200) * group["lr_scale"]
            loss = optimizer_step(self.optimizer, self.params,
                                  reconstruction_loss(self.model, x, is_matte, a.soft_weight))
            step += 1
            self._log("loss.jsonl", {"step": step, "loss": round(loss, 6),
                                     "seconds": round(time.perf_counter() - started, 3)})
            fitted = budget.iterations(step, a.iterations, first)
            if fitted != a.iterations:
                log.info("time budget %.0f s: %d steps instead of %d", a.time_budget, fitted, a.iterations)
                a.iterations = stop = fitted
            if step % a.checkpoint_every == 0 or step == stop:
                ckpt.save_checkpoint(ckpt_dir, step, self.params, self.names, self.optimizer, self.settings())
            if step % a.val_every == 0 or step == a.iterations:
                result = evaluate(self.model, self.held_out, self.held_out_mattes)
                self._log("validation.jsonl", {"step": step, **result})
                log.info("step %d: held-out PSNR %.2f dB, alpha %.2f dB", step, result["psnr"], result["psnr_alpha"])
        if step < a.iterations:
            log.info("stopped at step %d of %d; continue with --resume", step, a.iterations)
            return None
        return self.export()

    def export(self) -> Path:
        from safetensors.torch import save_file

        stats_clips = torch.stack([c.video for c in (self.clips.clip(i) for i in range(8))]).to(self.device)
        stats = normalise_latents_(self.model, stats_clips)
        stored = torch.float16 if self.args.export_dtype == "fp16" else torch.float32
        round_weights_(self.model, stored)  # every figure below is the file's own
        metrics = {**evaluate(self.model, self.held_out, self.held_out_mattes),
                   "ceiling": ceiling_metrics(self.model, ceiling_clips()),
                   "latent_after_process_in": stats, "steps": self.args.iterations}
        path = self.args.output / FILE_NAME
        state = {k: v.detach().to(stored).cpu().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(path), {"training": json.dumps(self.settings())})
        (self.args.output / "metrics.json").write_text(json.dumps(metrics, indent=1))
        log.info("wrote %s: held-out PSNR %.2f dB, ceiling %s", path, metrics["psnr"], metrics["ceiling"])
        return path

    def _log(self, name: str, record: dict) -> None:
        ckpt.append_jsonl(self.args.output / name, record)


def main(argv: list[str] | None = None) -> Path | None:
    import shlex
    import sys

    args = common.start_cli(parser(), argv)
    if args.init_from is not None and args.widen_from is not None:
        raise SystemExit("training.toy_vae: give --init-from (same width) or --widen-from (narrower), not both")
    args.output.mkdir(parents=True, exist_ok=True)
    words = [w for w in (sys.argv[1:] if argv is None else argv) if w != "--resume"]
    if "--crop-frames" not in words:  # the default has changed before: name it, so the command repeats the run
        words += ["--crop-frames", str(args.crop_frames)]
    (args.output / "command.txt").write_text(shlex.join(["python", "-m", "training.toy_vae", *words]) + "\n")
    return VaeTrainer(args).run()


if __name__ == "__main__":
    main()
