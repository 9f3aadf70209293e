"""``python -m training.train --role effect|quality ...``: train one expert (docs/training.md).

The base Wan model and VAE load with ComfyUI's loaders; the expert is trained through the
same dual-branch forward inference uses (``omnimatte_core.patching``); the result is one
expert file in the format ``LoadOmnimatteExperts`` reads. Multi-GPU: ``torchrun
--nproc_per_node=N -m training.train ...`` (DDP; rank 0 writes).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import math
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import common
from .distributed import DistInfo, barrier, global_indices, init_distributed, mean_across, shutdown
from .loop import TimeBudget, anneal_factor

log = logging.getLogger("training.train")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", choices=("effect", "quality"), required=True)
    common.add_model_args(p)
    p.add_argument("--output", type=Path, required=True, help="run folder: checkpoints, logs, the expert file")
    common.add_data_args(p)
    p.add_argument("--rank", type=int, default=None, help="LoRA rank (effect 128, quality 64)")
    p.add_argument("--lora-alpha", type=float, default=None, help="LoRA alpha (default = rank: scale 1)")
    p.add_argument("--last-k", type=int, default=None,
                   help="effect: LoRA on the last K blocks (default: a third of the blocks; pick K with analyze_blocks)")
    p.add_argument("--iterations", type=int, default=8000)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--anneal-steps", type=int, default=0, metavar="N",
                   help="lower the learning rate linearly to 0 over the run's last N steps (0: constant, the paper's)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--effect-weight", type=float, default=0.0, metavar="LAMBDA",
                   help="weight 1 + LAMBDA on the latent cells of the ground-truth effect (shadow) in the flow "
                        "loss; 0 (default) is the paper's plain mean (ours: docs/training.md)")
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="0 disables clipping")
    p.add_argument("--batch", type=int, default=1, help="clips per process per micro-batch")
    p.add_argument("--accumulation", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--data-workers", type=int, default=0,
                   help="processes rendering synthetic clips ahead (0: in the training process)")
    p.add_argument("--pool", type=int, default=0,
                   help="encode only this many training clips once and cycle through them (σ and noise stay fresh "
                        "every step); 0 renders and encodes a new clip for every sample")
    p.add_argument("--pool-cache", default=None, metavar="DIR",
                   help="with --pool: keep the encoded pool clips here (same seed, VAE and data settings only)")
    p.add_argument("--sigma-range", type=float, nargs=2, default=(0.0, 1.0), metavar=("LO", "HI"))
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="auto: bf16 weights + autocast on CUDA, fp32 on CPU")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--keep-checkpoints", type=int, default=3)
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")
    p.add_argument("--stop-after", type=int, default=None, help="leave after this many steps of this run "
                   "(a checkpoint is written), e.g. to split a run into jobs")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit --iterations to this wall time after a 30-step probe (a GPU lease; an --anneal-steps "
                   "decay still ends the run), and end the run if the time is spent anyway (expert written, step "
                   "count recorded)")
    p.add_argument("--val-every", type=int, default=500, help="0 disables validation")
    p.add_argument("--val-clips", type=int, default=4)
    p.add_argument("--val-steps", type=int, default=20)
    p.add_argument("--name", default=None, help="expert file name (default ROLE_expert.safetensors)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    return p


def _file_hash(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


class Trainer:
    """Everything one process needs; :meth:`run` is the loop."""

    def __init__(self, args: argparse.Namespace, info: DistInfo):
        from omnimatte_core.experts import ExpertInfo, ExpertRole, zero_lora_expert
        from omnimatte_core.patching import base_signature

        from .branch_model import attach_trainable_expert

        self.args, self.info = args, info
        self.inputs = common.load_inputs(args, args.precision)
        self.device, self.bf16, self.vae = self.inputs.device, self.inputs.bf16, self.inputs.vae
        base = self.inputs.base
        role = ExpertRole(args.role)
        signature = base_signature(base)
        rank = args.rank or (128 if role is ExpertRole.EFFECT else 64)
        if role is ExpertRole.EFFECT:
            k = args.last_k or math.ceil(signature.num_layers / 3)
            if not 1 <= k <= signature.num_layers:
                raise SystemExit(f"--last-k {k} is outside 1…{signature.num_layers} (the model's block count)")
            blocks = list(range(signature.num_layers - k, signature.num_layers))
        else:
            blocks = list(range(signature.num_layers))
        expert = zero_lora_expert(role, signature, rank, blocks, alpha=args.lora_alpha, seed=args.seed)
        expert.info = ExpertInfo(expert.info.role, rank, expert.info.alpha, expert.info.blocks,
                                 expert.info.attention_mask, signature, Path(args.model).name, _file_hash(args.model))
        self.trainable = attach_trainable_expert(base, expert, args.gradient_checkpointing)
        self.params = self.trainable.parameters()
        self.names = self.trainable.parameter_names()
        self._held_out: dict[int, tuple] = {}  # index → (Clip, EncodedClip), encoded once per run
        self._pool: dict[int, object] = {}  # --pool: clip index → EncodedClip

    def encoded(self, index: int, clip=None):
        """The EncodedClip for training index ``index`` (with --pool: clip ``index % pool``, encoded once)."""
        if not self.args.pool:
            return common.encoded_clip(self.inputs, self.inputs.clips, index, clip)[1]
        key = index % self.args.pool
        if key not in self._pool:
            self._pool[key] = self._pooled_clip(key)
        return self._pool[key]

    def _encode_pool(self) -> None:
        """Encode every pool clip before a timed run: encoded lazily, the first steps would carry the
        encoding, and the budget's probe would take them for the step time and cut the run short."""
        started = time.perf_counter()
        for key in range(self.args.pool):
            self.encoded(key)
        log.info("encoded %d pool clips in %.0f s, before the time budget starts", self.args.pool,
                 time.perf_counter() - started)

    def _pooled_clip(self, key: int):
        """Encode pool clip ``key``, or read it from ``--pool-cache`` (both experts share one data stream)."""
        from .encode import load_encoded, save_encoded

        cache = Path(self.args.pool_cache) / f"seed{self.args.seed}_clip{key:05d}.safetensors" \
            if self.args.pool_cache else None
        if cache is not None and cache.is_file():
            return self._with_effect_cells(load_encoded(cache), key)
        encoded = common.encoded_clip(self.inputs, self.inputs.clips, key)[1]
        if cache is not None:
            save_encoded(encoded, cache)
        return encoded

    def _with_effect_cells(self, encoded, key: int):
        """A cache written before effect cells were stored: render the clip again (seeded, cheap) for them."""
        from .encode import latent_cells

        if encoded.effect_cells is None and self.args.effect_weight > 0:
            encoded.effect_cells = latent_cells(self.inputs.clips.clip(key).shadow_region)
        return encoded

    def held_out(self, index: int) -> tuple:
        if index not in self._held_out:
            self._held_out[index] = common.encoded_clip(self.inputs, self.inputs.held_out, index)
        return self._held_out[index]

    # -- data ------------------------------------------------------------------------------
    def batch(self, indices: list[int], rendered=None):
        """Encode clips ``indices`` (``rendered``: an iterator of (index, Clip) made ahead) → FlowBatch."""
        from .objective import draw_sigma_and_noise, flow_batch

        encoded, sigmas, noises = [], [], []
        for index in indices:
            clip = None
            if rendered is not None:
                ready, clip = next(rendered)
                assert ready == index, (ready, index)
            e = self.encoded(index, clip)
            sigma, noise = draw_sigma_and_noise(self.args.seed, index, tuple(e.alpha.shape[1:]), self.args.shift,
                                                tuple(self.args.sigma_range))
            encoded.append(e)
            sigmas.append(sigma)
            noises.append(noise)
        return flow_batch(encoded, sigmas, noises)

    def held_out_loss(self, clips: int, sigmas: tuple[float, ...] = (0.25, 0.5, 0.75)) -> float:
        """Flow loss on held-out clips at fixed σ with fixed noise (comparable across steps and runs)."""
        from .common import HELD_OUT_SEED_OFFSET
        from .branch_model import load_for_training
        from .objective import alpha_flow_loss, draw_sigma_and_noise, flow_batch

        load_for_training(self.trainable)
        encoded = [self.held_out(i)[1] for i in range(clips)]
        seed = self.args.seed + HELD_OUT_SEED_OFFSET
        noises = [draw_sigma_and_noise(seed, i, tuple(e.alpha.shape[1:]), 1.0)[1] for i, e in enumerate(encoded)]
        total = 0.0
        with torch.no_grad():
            for sigma in sigmas:
                batch = flow_batch(encoded, [torch.tensor(sigma)] * clips, noises).to(self.device)
                total += float(alpha_flow_loss(self.trainable, batch))
        return total / len(sigmas)

    # -- loop ------------------------------------------------------------------------------
    def settings(self) -> dict:
        a = self.args
        return {"role": a.role, "iterations": a.iterations, "lr": a.lr, "anneal_steps": a.anneal_steps,
                "weight_decay": a.weight_decay,
                "effect_weight": a.effect_weight,
                "batch": a.batch, "accumulation": a.accumulation, "world": self.info.world, "shift": a.shift,
                "sigma_range": list(a.sigma_range), "seed": a.seed, "height": a.height, "width": a.width,
                "frames": a.frames, "foregrounds": a.foregrounds, "backgrounds": a.backgrounds,
                "shadow_prob": a.shadow_prob, "camera_prob": a.camera_prob, "keep_prob": a.keep_prob,
                "pool": a.pool, "bf16": self.bf16,
                "max_grad_norm": a.max_grad_norm, "rank": self.trainable.template.info.rank,
                "blocks": list(self.trainable.template.info.blocks)}

    def run(self) -> Path | None:
        import comfy.model_management

        previous = getattr(comfy.model_management, "in_training", False)  # v0.3.64 has no such flag
        comfy.model_management.in_training = True  # else the default RoPE op has no backward (DESIGN §2)
        try:
            return self._run()
        finally:
            comfy.model_management.in_training = previous

    def _run(self) -> Path | None:
        from .branch_model import load_for_training, transformer_options

        a, info = self.args, self.info
        load_for_training(self.trainable)
        optimizer = torch.optim.AdamW(self.params, lr=a.lr, weight_decay=a.weight_decay)
        ckpt_dir = a.output / "checkpoints"
        step = 0
        if a.resume:
            step = ckpt.resume_step(ckpt_dir, self.params, self.names, optimizer)
        module = _LossModule(self.trainable, a.effect_weight)
        if info.world > 1:
            module = torch.nn.parallel.DistributedDataParallel(module)
        options = transformer_options(self.trainable.patched)
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if self.bf16 and self.device.type == "cuda" \
            else contextlib.nullcontext
        if info.is_main:
            a.output.mkdir(parents=True, exist_ok=True)
            (a.output / "settings.json").write_text(json.dumps(self.settings(), indent=1))
        stop = a.iterations if a.stop_after is None else min(a.iterations, step + a.stop_after)
        bar = _progress(info.is_main and a.progress, step, a.iterations)
        order = [i for s in range(step, stop) for m in range(a.accumulation)
                 for i in global_indices(s, m, info, a.batch, a.accumulation)]
        rendered = None if a.pool else common.render_ahead(self.inputs.clips, order, a.data_workers)
        losses_log = a.output / "loss.jsonl"
        loss_value = float("nan")
        if a.time_budget and a.pool and info.world == 1:
            self._encode_pool()
        budget, first = TimeBudget(a.time_budget if info.world == 1 else None), step  # ranks must agree
        while step < stop:
            if budget.expired() and step > 0 and info.world == 1:  # ranks could stop apart: single process only
                log.info("time budget %.0f s spent at step %d of %d: ending the run there", a.time_budget, step,
                         a.iterations)
                a.iterations = stop = step
                if step % a.checkpoint_every:
                    ckpt.save_checkpoint(ckpt_dir, step, self.params, self.names, optimizer, self.settings(),
                                         a.keep_checkpoints)
                if a.val_every:
                    self.validate(step)
                break
            started = time.perf_counter()
            loss_value = self._step(module, optimizer, options, autocast, step, rendered)
            step += 1
            if info.is_main:
                with losses_log.open("a") as f:
                    f.write(json.dumps({"step": step, "loss": loss_value,
                                        "seconds": round(time.perf_counter() - started, 4),
                                        **peak_memory(self.device)}) + "\n")
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
            fitted = budget.iterations_with_decay(step, a.iterations, a.anneal_steps, first)  # the decay kept whole
            if fitted < a.iterations:
                log.info("time budget %.0f s: %d steps instead of %d", a.time_budget, fitted, a.iterations)
                a.iterations, stop = fitted, min(stop, fitted)
            if step % a.checkpoint_every == 0 or step == stop:
                if info.is_main:
                    ckpt.save_checkpoint(ckpt_dir, step, self.params, self.names, optimizer, self.settings(),
                                         a.keep_checkpoints)
                barrier(info)
            if a.val_every and (step % a.val_every == 0 or step == a.iterations):
                self.validate(step)
        bar.close()
        if step < a.iterations:
            log.info("stopped at step %d of %d; continue with --resume", step, a.iterations)
            return None
        return self.write_expert(loss_value)

    def _step(self, module, optimizer, options: dict, autocast, step: int, rendered) -> float:
        """One optimizer step over ``--accumulation`` micro-batches; returns the loss averaged over ranks."""
        from .branch_model import load_for_training

        a, info = self.args, self.info
        load_for_training(self.trainable)  # back on the device if ComfyUI moved it (VAE, validation)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for micro in range(a.accumulation):
            batch = self.batch(global_indices(step, micro, info, a.batch, a.accumulation), rendered).to(self.device)
            last = info.world == 1 or micro == a.accumulation - 1
            with contextlib.nullcontext() if last else module.no_sync():  # DDP syncs on the last micro-batch
                with autocast():
                    loss = module(batch, options)
                (loss / a.accumulation).backward()
            total += float(loss.detach()) / a.accumulation
        if a.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, a.max_grad_norm)
        for group in optimizer.param_groups:
            group["lr"] = a.lr * anneal_factor(step, a.iterations, a.anneal_steps)
        optimizer.step()
        return mean_across(total, info)

    def validate(self, step: int) -> dict | None:
        from .validate import HeldOut, evaluate

        result = None
        if self.info.is_main:
            held = [HeldOut(*self.held_out(i), i) for i in range(self.args.val_clips)]
            result = {"step": step, "flow_loss": self.held_out_loss(self.args.val_clips),
                      **evaluate(self.inputs.base, self.expert_pair(), self.vae, held, self.args.val_steps,
                                 self.args.seed)}
            with (self.args.output / "validation.jsonl").open("a") as f:
                f.write(json.dumps(result) + "\n")
            log.info("validation at step %d: held-out flow loss %.4f, alpha MSE object %s, shadow %s", step,
                     result["flow_loss"], result["object_mse"], result["shadow_mse"])
        barrier(self.info)
        return result

    def expert_pair(self):
        """The expert as it is now, as LoadOmnimatteExperts would hand it to the sampler."""
        from omnimatte_core.experts import ExpertPair, ExpertRole

        expert = self.trainable.to_expert()
        return ExpertPair(expert, None) if expert.info.role is ExpertRole.EFFECT else ExpertPair(None, expert)

    def write_expert(self, final_loss: float) -> Path | None:
        from omnimatte_core.expert_file import save_expert

        path = None
        if self.info.is_main:
            training = {**self.settings(), "final_loss": final_loss}
            # again: a --time-budget run records the step count it settled on, which a longer --resume reads
            (self.args.output / "settings.json").write_text(json.dumps(self.settings(), indent=1))
            path = self.args.output / (self.args.name or f"{self.args.role}_expert.safetensors")
            save_expert(self.trainable.to_expert(training), path)
            log.info("wrote %s", path)
        barrier(self.info)
        return path


class _LossModule(torch.nn.Module):
    """The trainable factors as a Module (what DDP wraps); the frozen Wan model is not a submodule."""

    def __init__(self, trainable, effect_weight: float = 0.0):
        super().__init__()
        self.weights = trainable.weights
        self.trainable = trainable
        self.effect_weight = effect_weight

    def forward(self, batch, options):
        from .objective import alpha_flow_loss

        return alpha_flow_loss(self.trainable, batch, options, effect_weight=self.effect_weight)


def peak_memory(device: torch.device) -> dict[str, int]:
    """This process's peaks so far, for loss.jsonl: resident memory, and CUDA memory allocated on a GPU."""
    import resource

    peaks = {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    if device.type == "cuda":
        peaks["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
    return peaks


def _progress(enabled: bool, initial: int, total: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc="training", unit="step")


def main(argv: list[str] | None = None) -> Path | None:
    info = init_distributed()  # before ComfyUI picks its device
    args = common.start_cli(parser(), argv)
    if not 0 <= args.anneal_steps <= args.iterations:
        raise SystemExit(f"--anneal-steps {args.anneal_steps}: give 0 (constant rate) to --iterations "
                         f"({args.iterations})")
    try:
        return Trainer(args, info).run()
    finally:
        shutdown(info)


if __name__ == "__main__":
    main()
