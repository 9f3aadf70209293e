"""Benchmark: the whole decomposition through ComfyUI's executor, seconds per stage.

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.decompose --json                   # CPU, ≈ 1 min
    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.decompose --json --preset wan1.3b  # GPU

Seeded random models at the preset's size (a Wan 2.1 DiT, a Wan VAE, two experts, a cached text
embedding) go through the pack's real node chain — OmnimatteConditioning (VAE encode),
BranchWanSampler (N steps of the pair, Effect Expert while σ > τ), OmnimatteDecode (two decodes) —
run by ComfyUI's own executor (so under ``torch.inference_mode()``, as in the app). Frames and
mask come from core nodes (EmptyImage, SolidMask, MaskComposite), so no video file or PyAV is needed.

Runs: a cold one (loading included), a warm one (the headline ``total_s``: encode + sampler +
decode), τ = 0 (every step an Effect step), τ = 1 (every step a Quality step) and the stock
model through core KSampler on one latent (the stock step the ratios use). Peak memory is per
stage on CUDA and the process peak RSS on CPU. Goal on an H200 with a current host, wan1.3b
preset at 4 steps: total ≤ 10 s (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

log = logging.getLogger("benchmarks.decompose")
PRESETS = {
    # ≈ 1 minute on 2 CPU cores: a T2V-type tiny Wan (no CLIP-H), the tiny VAE
    "cpu": dict(dim=128, ffn_dim=256, blocks=4, i2v=False, frames=17, height=128, width=208, steps=4,
                dtype="default", vae_dim=8, effect_blocks=2),
    # Wan2.1-1.3B (Casper's size): dim 1536, 30 blocks, I2V with CLIP-H; 81 × 480 × 832, bf16, full VAE
    "wan1.3b": dict(dim=1536, ffn_dim=8960, blocks=30, i2v=True, frames=81, height=480, width=832, steps=4,
                    dtype="default", vae_dim=96, effect_blocks=10),
}
SAMPLER_STAGES = ("sampler", "stock")


MODEL_NAMES = {"unet": "bench_wan.safetensors", "vae": "bench_vae.safetensors", "effect": "bench_effect.safetensors",
               "quality": "bench_quality.safetensors", "text": "bench_text.safetensors"}


def register_models(cfg: dict, folder: Path) -> dict[str, str]:
    """Point ComfyUI's model folders at ``folder`` (written by :func:`write_models`, maybe in another
    process); → loader input values. An I2V preset's random CLIP-H file is made once and cached."""
    import folder_paths

    from training import random_models as rm

    for kind in ("diffusion_models", "vae", "omnimatte", "omnimatte_text_embeds"):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        folder_paths.add_model_folder_path(kind, str(folder / kind), is_default=True)
    names = dict(MODEL_NAMES)
    if cfg["i2v"]:
        vision = rm.clip_vision_h_file(seed=0)
        folder_paths.add_model_folder_path("clip_vision", str(vision.parent), is_default=True)
        names["clip_vision"] = vision.name
    return names


def model_files(names: dict[str, str], folder: Path) -> dict[str, Path]:
    """The written files by role (what ``training.train`` takes as paths)."""
    kinds = {"unet": "diffusion_models", "vae": "vae", "effect": "omnimatte", "quality": "omnimatte",
             "text": "omnimatte_text_embeds"}
    return {role: folder / kind / names[role] for role, kind in kinds.items()}


def write_models(cfg: dict, folder: Path) -> dict[str, str]:
    """Seeded random model files in ComfyUI model folders under ``folder``; → loader input values."""
    from safetensors.torch import save_file

    from omnimatte_core import expert_file, experts, text_embeds
    from training import random_models as rm

    names = register_models(cfg, folder)
    files = model_files(names, folder)
    spec = rm.TinyWanSpec(i2v=cfg["i2v"], dim=cfg["dim"], ffn_dim=cfg["ffn_dim"], num_layers=cfg["blocks"])
    rm.write_wan(files["unet"], spec, seed=0)
    save_file(rm.vae_state_dict(seed=1, dim=cfg["vae_dim"]), str(files["vae"]))
    base = experts.BaseSignature(dim=cfg["dim"], num_layers=cfg["blocks"], in_dim=spec.in_dim)
    blocks = list(range(cfg["blocks"] - cfg["effect_blocks"], cfg["blocks"]))
    expert_file.save_expert(experts.zero_lora_expert("effect", base, 128, blocks, seed=2, init_std=0.01),
                            files["effect"])
    expert_file.save_expert(experts.zero_lora_expert("quality", base, 64, seed=3, init_std=0.01), files["quality"])
    text_embeds.save_conditioning(rm.text_conditioning(4, tokens=512), files["text"])
    return names


def graph(cfg: dict, names: dict, tau: float, color: int, stock: bool = False) -> dict:
    """The API prompt: core frames and mask → the pack's chain (or core KSampler for the stock step)."""
    w, h, n = cfg["width"], cfg["height"], cfg["frames"]
    g = {
        "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": names["unet"], "weight_dtype": cfg["dtype"]}},
        "model": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["unet", 0], "shift": 5.0}},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": names["vae"]}},
        "text": {"class_type": "OmnimatteLoadTextEmbeds", "inputs": {"embeds_name": names["text"]}},
        "frames": {"class_type": "EmptyImage", "inputs": {"width": w, "height": h, "batch_size": n, "color": color}},
        "mask_bg": {"class_type": "SolidMask", "inputs": {"value": 0.0, "width": w, "height": h}},
        "mask_obj": {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": w // 4, "height": h // 3}},
        "mask": {"class_type": "MaskComposite", "inputs": {"destination": ["mask_bg", 0], "source": ["mask_obj", 0],
                                                            "x": w // 3, "y": h // 3, "operation": "add"}},
        "cond": {"class_type": "OmnimatteConditioning", "inputs": {
            "positive": ["text", 0], "negative": ["text", 0], "vae": ["vae", 0], "video": ["frames", 0],
            "object_mask": ["mask", 0], "width": w, "height": h, "mask_threshold": 0.5, "dilation": -1}},
    }
    if cfg["i2v"]:
        g["vision"] = {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": names["clip_vision"]}}
        # frame 0 of the solid clip, from core nodes.py alone (ImageFromBatch lives in comfy_extras, whose
        # module needs ComfyUI's server imports: absent on a bare GPU machine)
        g["first"] = {"class_type": "EmptyImage", "inputs": {"width": w, "height": h, "batch_size": 1, "color": color}}
        g["encode_vision"] = {"class_type": "CLIPVisionEncode", "inputs": {"clip_vision": ["vision", 0],
                                                                           "image": ["first", 0], "crop": "none"}}
        g["cond"]["inputs"]["clip_vision_output"] = ["encode_vision", 0]
    common = {"seed": 43, "steps": cfg["steps"], "cfg": 1.0, "sampler_name": "euler", "scheduler": "simple"}
    if stock:
        g["one"] = {"class_type": "LatentFromBatch", "inputs": {"samples": ["cond", 2], "batch_index": 0,
                                                                "length": 1}}
        g["stock"] = {"class_type": "KSampler", "inputs": {
            "model": ["model", 0], "positive": ["cond", 0], "negative": ["cond", 1], "latent_image": ["one", 0],
            "denoise": 1.0, **common}}
        g["out"] = {"class_type": "PreviewAny", "inputs": {"source": ["stock", 0]}}
        return g
    g["experts"] = {"class_type": "LoadOmnimatteExperts", "inputs": {
        "effect_expert": names["effect"], "effect_strength": 1.0, "quality_expert": names["quality"],
        "quality_strength": 1.0}}
    g["sampler"] = {"class_type": "BranchWanSampler", "inputs": {
        "model": ["model", 0], "experts": ["experts", 0], "positive": ["cond", 0], "negative": ["cond", 1],
        "latent": ["cond", 2], "tau": tau, **common}}
    g["decode"] = {"class_type": "OmnimatteDecode", "inputs": {"vae": ["vae", 0], "background": ["sampler", 0],
                                                               "alpha": ["sampler", 1]}}
    g["out_bg"] = {"class_type": "PreviewAny", "inputs": {"source": ["decode", 0]}}
    g["out_alpha"] = {"class_type": "PreviewAny", "inputs": {"source": ["decode", 1]}}
    return g


class StageClock:
    """The executor's server: seconds (and CUDA peak) per node from its 'executing' messages."""

    client_id, last_node_id, last_prompt_id = "bench", None, None

    def __init__(self):
        import torch

        self.cuda = torch.cuda.is_available()
        self.seconds: dict[str, float] = {}
        self.peak_mb: dict[str, float] = {}
        self.current: tuple[str, float] | None = None

    def send_sync(self, event, data, sid=None) -> None:
        if event == "executing":
            self._close()
            node = data.get("node")
            if node is not None:
                if self.cuda:
                    import torch

                    torch.cuda.synchronize()
                    torch.cuda.reset_peak_memory_stats()
                self.current = (node, time.perf_counter())
        elif event in ("execution_success", "execution_error", "execution_interrupted"):
            self._close()

    def _close(self) -> None:
        if self.current is None:
            return
        node, started = self.current
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            self.peak_mb[node] = round(torch.cuda.max_memory_allocated() / 2**20)
        self.seconds[node] = round(time.perf_counter() - started, 3)
        self.current = None


def run(executor, clock: StageClock, prompt: dict) -> dict[str, float]:
    import asyncio

    import execution

    valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(str(uuid.uuid4()), prompt, None))
    if not valid:
        raise RuntimeError(f"the benchmark graph does not validate: {error} {node_errors}")
    clock.seconds, clock.peak_mb = {}, {}
    executor.server = clock
    executor.execute(prompt, str(uuid.uuid4()), {"client_id": clock.client_id}, outputs)
    if not executor.success:
        failure = next((d for e, d in executor.status_messages if e == "execution_error"), {})
        raise RuntimeError(f"{failure.get('node_type')} failed: {failure.get('exception_message')}")
    return dict(clock.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="sampler steps (default: the preset's 4)")
    parser.add_argument("--weight-dtype", default=None, help="UNETLoader weight_dtype (e.g. fp8_e4m3fn)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from omnimatte_host import comfy_host

    comfy_path = comfy_host.import_comfy(threads=args.threads or os.cpu_count())
    comfy_host.load_nodes_with_pack()
    import torch

    cfg = dict(PRESETS[args.preset])
    cfg["steps"] = args.steps or cfg["steps"]
    cfg["dtype"] = args.weight_dtype or cfg["dtype"]
    with tempfile.TemporaryDirectory(prefix="omnimatte-bench-") as models:
        names = write_models(cfg, Path(models))
        clock = StageClock()
        executor = comfy_host.prompt_executor(clock)
        cold = run(executor, clock, graph(cfg, names, 0.5, 0x808080))
        warm = run(executor, clock, graph(cfg, names, 0.5, 0x7F7F7F))  # new frames: encode, sample, decode again
        warm_peaks = dict(clock.peak_mb)
        effect = run(executor, clock, graph(cfg, names, 0.0, 0x7F7F7F))
        quality = run(executor, clock, graph(cfg, names, 1.0, 0x7F7F7F))
        stock = run(executor, clock, graph(cfg, names, 0.5, 0x7F7F7F, stock=True))
    steps = cfg["steps"]
    per_step = {"effect_s": effect["sampler"] / steps, "quality_s": quality["sampler"] / steps,
                "stock_s": stock["stock"] / steps}
    report = {
        "preset": args.preset, "shape": {k: cfg[k] for k in ("dim", "blocks", "i2v", "frames", "height", "width")},
        "steps": steps, "weight_dtype": cfg["dtype"], "tau": 0.5,
        "stages_s": {"vae_encode": warm["cond"], "sampler": warm["sampler"], "decode_two": warm["decode"]},
        "total_s": round(warm["cond"] + warm["sampler"] + warm["decode"], 3),
        "cold_total_s": round(sum(cold.values()), 3),
        "per_step_s": {k: round(v, 4) for k, v in per_step.items()},
        "ratio_effect_step": round(per_step["effect_s"] / per_step["stock_s"], 3),
        "ratio_quality_step": round(per_step["quality_s"] / per_step["stock_s"], 3),
        "peak_cuda_mb": warm_peaks or None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(), "comfyui": comfy_host.comfyui_version(comfy_path),
        "torch": torch.__version__, "goal": {"preset": "wan1.3b", "steps": 4, "total_s_max": 10.0},
    }
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
