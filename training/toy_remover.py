"""``python -m training.toy_remover --vae VAE --text-embeds FILE --output DIR``: the toy Casper (docs/toy_world.md).

A small Wan 2.1 DiT with ``in_dim`` 36 and no ``img_emb`` (``UNETLoader`` detects it as the
T2V type; ComfyUI's concat conditioning still feeds it the packed trimask and the video
latent) trained like Casper: input ``[noisy background | 1 − trimask | unmasked video latent]``,
target the background with the object *and its shadow* removed, flow matching with shift 5.
The model is loaded and run through ComfyUI (``load_diffusion_model``, ``concat_cond``,
``apply_model``); only the loop is ours. Resumable with ``--resume``.
"""

from __future__ import annotations

import argparse
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import common
from .loop import TimeBudget, optimizer_step, warmup_cosine
from .objective import draw_sigma_and_noise
from .toy_data import held_out_clips, train_clips

log = logging.getLogger("training.toy_remover")
FILE_NAME = "easyomnimatte_toy_remover.safetensors"  # the shipped name: experts record it
SHIFT = 5.0
TEXT_DIM = 4096  # umt5-xxl width: Wan's detection fixes it
EXPORT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


@dataclass(frozen=True)
class RemoverSpec:
    dim: int = 128  # Wan: heads = dim // 128
    ffn_dim: int = 512
    num_layers: int = 6


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.toy_remover", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vae", required=True, help="the toy VAE (training.toy_vae)")
    p.add_argument("--text-embeds", required=True, help="the toy text embedding file")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--layers", type=int, default=RemoverSpec.num_layers)
    p.add_argument("--dim", type=int, default=RemoverSpec.dim)
    p.add_argument("--ffn-dim", type=int, default=RemoverSpec.ffn_dim)
    p.add_argument("--iterations", type=int, default=6000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--pool", type=int, default=512, help="training clips encoded once and cycled through")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--val-every", type=int, default=500)
    p.add_argument("--val-clips", type=int, default=4)
    p.add_argument("--val-steps", type=int, default=12)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--stop-after", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--workers", type=int, default=0, help="processes rendering the pool (0: this one)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit --iterations to this wall time after a 30-step probe (a GPU lease)")
    p.add_argument("--export-dtype", choices=tuple(EXPORT_DTYPES), default="fp32",
                   help="precision of the finished model file (checkpoints stay fp32); fp16 halves a wide base's "
                        "file, and the experts must then be trained on that fp16 file")
    p.add_argument("--export-only", action="store_true",
                   help="write the model file from the newest checkpoint and stop (no encoding, no steps)")
    return p


def init_remover_state(spec: RemoverSpec, seed: int) -> dict[str, torch.Tensor]:
    """A fresh T2V-type Wan state dict (in_dim 36): fan-in weights, zero biases, zero output head."""
    import comfy.ldm.wan.model
    import comfy.ops

    model = comfy.ldm.wan.model.WanModel(model_type="t2v", in_dim=36, dim=spec.dim, ffn_dim=spec.ffn_dim,
                                         text_dim=TEXT_DIM, out_dim=16, num_heads=spec.dim // 128,
                                         num_layers=spec.num_layers, operations=comfy.ops.disable_weight_init,
                                         dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    for name, tensor in state.items():
        if "modulation" in name:
            tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.02)
        elif tensor.ndim == 1:
            tensor.fill_(1.0 if "norm" in name and name.endswith("weight") else 0.0)
        elif name.startswith("head.head"):
            tensor.zero_()
        else:
            tensor.copy_(torch.randn(tensor.shape, generator=gen) / math.sqrt(math.prod(tensor.shape[1:])))
    return {k: v.contiguous() for k, v in state.items()}


@dataclass
class RemovalExample:
    video_latent: torch.Tensor  # [1, 16, T, h, w] VAE space (concat_cond normalises it)
    background: torch.Tensor  # [1, 16, T, h, w] model space (process_in): the target x0
    concat_mask: torch.Tensor  # [1, 4, T, h, w] packed trimask


def encode_removal(clip, vae, latent_format) -> RemovalExample:
    from omnimatte_core.conditioning import latent_trimask

    from .encode import vae_encode

    return RemovalExample(vae_encode(vae, clip.video), latent_format.process_in(vae_encode(vae, clip.background)),
                          latent_trimask(clip.trimask))


def removal_conditioning(example: RemovalExample, context: torch.Tensor) -> list:
    """The CONDITIONING OmnimatteConditioning hands the sampler for a T2V-type (no CLIP-H) base."""
    import node_helpers

    values = {"concat_latent_image": example.video_latent, "concat_mask": example.concat_mask}
    return node_helpers.conditioning_set_values([[context, {"pooled_output": None}]], values)


def sample_background(model, vae, example: RemovalExample, context: torch.Tensor, steps: int,
                      seed: int) -> torch.Tensor:
    """Stock ComfyUI sampling (euler, simple, cfg 1) of the background alone → decoded [N, H, W, 3]."""
    import comfy.sample

    positive = removal_conditioning(example, context)
    latent = torch.zeros_like(example.video_latent)
    noise = comfy.sample.prepare_noise(latent, seed)
    with torch.no_grad():
        samples = comfy.sample.sample(model, noise, steps, 1.0, "euler", "simple", positive, positive, latent,
                                      disable_pbar=True, seed=seed)
        decoded = vae.decode(samples)
    return decoded.reshape(-1, *decoded.shape[-3:]).float().clamp(0, 1).cpu()


class RemoverTrainer:
    def __init__(self, args: argparse.Namespace):
        from safetensors.torch import save_file

        from .features import TextEmbeddings
        from .loaders import load_trainable_model, load_vae

        self.args = args
        args.output.mkdir(parents=True, exist_ok=True)
        init = args.output / "init.safetensors"
        if not init.is_file():
            spec = RemoverSpec(args.dim, args.ffn_dim, args.layers)
            save_file(init_remover_state(spec, args.seed), str(init))
        self.model = load_trainable_model(init, SHIFT, torch.float32)  # fp32 master weights on a GPU too
        self.vae = load_vae(args.vae)
        self.context = TextEmbeddings(args.text_embeds).tokens("")
        self.net = self.model.model.diffusion_model
        self.names = [n for n, _ in self.net.named_parameters()]
        self.params = [p for _, p in self.net.named_parameters()]
        self.optimizer = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=0.01)
        self.pool: list[RemovalExample] = []
        self.held_out = held_out_clips(args.val_clips)

    def encode_pool(self) -> None:
        from .common import render_ahead

        clips, fmt = train_clips(self.args.seed), self.model.model.latent_format
        started = time.perf_counter()
        device = self.device()
        self.pool = [RemovalExample(*(t.to(device) for t in (e.video_latent, e.background, e.concat_mask)))
                     for e in (encode_removal(clip, self.vae, fmt)
                               for _, clip in render_ahead(clips, list(range(self.args.pool)), self.args.workers))]
        log.info("encoded %d training clips in %.0f s", len(self.pool), time.perf_counter() - started)

    def loss(self, indices: list[int], step: int) -> torch.Tensor:
        examples = [self.pool[i % len(self.pool)] for i in indices]
        x0 = torch.cat([e.background for e in examples])
        draws = [draw_sigma_and_noise(self.args.seed, step * 1000 + i, tuple(x0.shape[1:]), SHIFT) for i in indices]
        sigma = torch.stack([d[0] for d in draws]).to(x0.device)
        noise = torch.stack([d[1][0] for d in draws]).to(x0.device)
        s = sigma.view(-1, 1, 1, 1, 1)
        x_t = (1 - s) * x0 + s * noise
        c_concat = self.model.model.concat_cond(
            noise=x_t, concat_latent_image=torch.cat([e.video_latent for e in examples]),
            concat_mask=torch.cat([e.concat_mask for e in examples]), device=x_t.device)
        context = self.context.expand(len(examples), -1, -1)
        denoised = self.model.model.apply_model(x_t, sigma, c_concat=c_concat, c_crossattn=context,
                                                transformer_options={"sigmas": sigma, "cond_or_uncond": [0]})
        velocity = (x_t - denoised) / s
        return (velocity - (noise - x0)).pow(2).mean()

    def device(self) -> torch.device:
        import comfy.model_management

        return comfy.model_management.get_torch_device()

    def load_on_device(self) -> None:
        """The model on ComfyUI's device, whole (validation's VAE calls may have moved it)."""
        from omnimatte_core.patching import load_like_sampler

        load_like_sampler(self.model, force_full_load=True)

    def run(self) -> Path | None:
        import comfy.model_management

        previous = getattr(comfy.model_management, "in_training", False)
        comfy.model_management.in_training = True  # the default RoPE op has no backward otherwise
        try:
            return self._run()
        finally:
            comfy.model_management.in_training = previous

    def _run(self) -> Path | None:
        a = self.args
        ckpt_dir, step = a.output / "checkpoints", 0
        if a.resume or a.export_only:
            step = ckpt.resume_step(ckpt_dir, self.params, self.names, self.optimizer)
        if a.export_only:
            log.info("exporting the step-%d checkpoint", step)
            return self.export()
        self.encode_pool()
        self.load_on_device()
        stop = a.iterations if a.stop_after is None else min(a.iterations, step + a.stop_after)
        order = torch.randperm(10 * a.iterations * a.batch, generator=torch.Generator().manual_seed(a.seed))
        budget, first = TimeBudget(a.time_budget), step
        while step < stop:
            started = time.perf_counter()
            if step % max(1, a.val_every) == 0:
                self.load_on_device()
            for group in self.optimizer.param_groups:
                group["lr"] = warmup_cosine(a.lr, step, a.iterations, warmup=100)
            loss = optimizer_step(self.optimizer, self.params,
                                  self.loss(order[step * a.batch:(step + 1) * a.batch].tolist(), step))
            step += 1
            self._log("loss.jsonl", {"step": step, "loss": round(loss, 6),
                                     "seconds": round(time.perf_counter() - started, 3)})
            fitted = budget.iterations(step, a.iterations, first)
            if fitted != a.iterations:
                log.info("time budget %.0f s: %d steps instead of %d", a.time_budget, fitted, a.iterations)
                a.iterations = stop = fitted
            if step % a.checkpoint_every == 0 or step == stop:
                ckpt.save_checkpoint(ckpt_dir, step, self.params, self.names, self.optimizer, vars_json(a))
            if a.val_every and (step % a.val_every == 0 or step == a.iterations):
                self.validate(step)
        if step < a.iterations:
            log.info("stopped at step %d of %d; continue with --resume", step, a.iterations)
            return None
        return self.export()

    def validate(self, step: int) -> dict:
        """Background PSNR inside the removed region (object ∪ shadow) and outside it, held-out clips."""
        from omnimatte_core.metrics import region_psnr

        inside, outside = [], []
        fmt = self.model.model.latent_format
        for i, clip in enumerate(self.held_out):
            example = encode_removal(clip, self.vae, fmt)
            with torch.inference_mode():
                pred = sample_background(self.model, self.vae, example, self.context, self.args.val_steps,
                                         self.args.seed + i)
            removed = clip.gt_alpha >= 0.1
            inside.append(region_psnr(pred, clip.background, removed))
            outside.append(region_psnr(pred, clip.background, ~removed))
        mean = lambda xs: round(sum(x for x in xs if x is not None) / max(1, sum(x is not None for x in xs)), 3)  # noqa: E731
        result = {"step": step, "psnr_removed_region": mean(inside), "psnr_outside": mean(outside)}
        self._log("validation.jsonl", result)
        log.info("step %d: held-out background PSNR %.2f dB in the removed region, %.2f dB outside", step,
                 result["psnr_removed_region"], result["psnr_outside"])
        return result

    def export(self) -> Path:
        from safetensors.torch import save_file

        path = self.args.output / FILE_NAME
        dtype = EXPORT_DTYPES[self.args.export_dtype]
        state = {k: v.detach().to(dtype if v.is_floating_point() else v.dtype).cpu().contiguous()
                 for k, v in self.net.state_dict().items()}
        save_file(state, str(path))
        log.info("wrote %s", path)
        return path

    def _log(self, name: str, record: dict) -> None:
        ckpt.append_jsonl(self.args.output / name, record)


def vars_json(args: argparse.Namespace) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}


def main(argv: list[str] | None = None) -> Path | None:
    args = common.start_cli(parser(), argv)
    return RemoverTrainer(args).run()


if __name__ == "__main__":
    main()
