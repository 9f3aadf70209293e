"""Benchmark: dual-branch forward vs a stock Wan forward vs the dense-mask reference.

    python benchmarks/branch_forward.py --json                  # CPU default, about a minute on 2 cores
    python benchmarks/branch_forward.py --json --preset wan1.3b # Wan2.1-1.3B size, bf16, GPU

Prints one JSON object: median seconds of a batch-1 stock forward of one branch
(``stock_s``), of the dual-branch forward of one [bg, α] pair with mask B + Effect LoRA
(``dual_b_s``) and mask C + Quality LoRA (``dual_c_s``), of the dense reference
(``dense_ref_s``), the ratios, peak memory where measurable, shape, threads, device.
Targets (reported, not asserted): ratio_c ≤ 2.2, ratio_b ≤ 2.8, both below the dense reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))
sys.path.append(str(ROOT / "tests"))  # the dense reference lives with the tests

PRESETS = {
    # ≥ 2,000 tokens per branch, ≥ 4 blocks: 17 frames at 256×416 → 5×16×26 = 2,080 tokens
    "cpu": dict(dim=128, ffn_dim=256, blocks=4, frames=17, height=256, width=416, dtype="float32",
                effect_blocks=2),
    # Wan2.1-1.3B: dim 1536, 30 blocks, 12 heads; 81 frames at 480×832 → 21×30×52 = 32,760 tokens
    "wan1.3b": dict(dim=1536, ffn_dim=8960, blocks=30, frames=81, height=480, width=832, dtype="bfloat16",
                    effect_blocks=10),
}
DENSE_MAX_TOKENS = 16_384  # a dense [2L, 2L] mask beyond this does not fit a sensible budget


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=PRESETS, default="cpu")
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--effect-rank", type=int, default=128)
    p.add_argument("--quality-rank", type=int, default=64)
    return p.parse_args()


def load_for_forward(patcher) -> None:
    """Load a MODEL (patched or stock) as ComfyUI's sampler does: with its additional models, so the
    experts' LoRA factors reach the GPU with the Wan weights (tests/test_branch_forward.py checks it)."""
    from omnimatte_core import patching

    patching.load_like_sampler(patcher)


def _timed(fn, repeats: int, device) -> tuple[float, float | None]:
    import torch

    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return statistics.median(times), peak


def main() -> None:
    args = parse_args()
    import os

    from omnimatte_host import comfy_host

    threads = args.threads or os.cpu_count()
    comfy_path = comfy_host.import_comfy(threads=threads)
    import torch

    import comfy.model_management as mm
    import comfy.sd
    from benchmarks.references.dense_forward import dense_forward
    from omnimatte_core import patching
    from omnimatte_core.experts import zero_lora_expert
    from training import random_models as rm

    cfg = PRESETS[args.preset]
    dtype = getattr(torch, cfg["dtype"])
    device = mm.get_torch_device()
    spec = rm.TinyWanSpec(i2v=True, dim=cfg["dim"], ffn_dim=cfg["ffn_dim"], num_layers=cfg["blocks"])
    model = comfy.sd.load_diffusion_model_state_dict(rm.wan_state_dict(spec, seed=0), model_options={"dtype": dtype})
    base = patching.base_signature(model)
    n_blocks = cfg["blocks"]
    effect = zero_lora_expert("effect", base, args.effect_rank, list(range(n_blocks - cfg["effect_blocks"], n_blocks)),
                              seed=1, init_std=0.01)
    quality = zero_lora_expert("quality", base, args.quality_rank, seed=2, init_std=0.01)

    t_lat, h_lat, w_lat = (cfg["frames"] - 1) // 4 + 1, cfg["height"] // 8, cfg["width"] // 8
    tokens = t_lat * (h_lat // 2) * (w_lat // 2)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 36, t_lat, h_lat, w_lat, generator=gen).to(device, dtype)
    t = torch.full((2,), 800.0, device=device)
    context = rm.text_conditioning(1, tokens=512)[0][0].to(device, dtype).expand(2, -1, -1)
    clip = rm.clip_vision_output(2).penultimate_hidden_states.to(device, dtype).expand(2, -1, -1)

    def forward(patcher, batch: slice):
        load_for_forward(patcher)
        wan = patcher.model.diffusion_model
        opts = {"wrappers": patcher.wrappers, "sigmas": t[batch] / 1000.0}
        return lambda: wan(x[batch], t[batch], context[batch], clip_fea=clip[batch], transformer_options=dict(opts))

    results = {}
    with torch.inference_mode():
        results["stock_s"], results["stock_peak_mb"] = _timed(forward(model, slice(0, 1)), args.repeats, device)
        dual_b = patching.apply_branch_experts(model, effect, None)
        results["dual_b_s"], results["dual_b_peak_mb"] = _timed(forward(dual_b, slice(0, 2)), args.repeats, device)
        dual_c = patching.apply_branch_experts(model, None, quality)
        results["dual_c_s"], results["dual_c_peak_mb"] = _timed(forward(dual_c, slice(0, 2)), args.repeats, device)
        if 2 * tokens <= DENSE_MAX_TOKENS:
            load_for_forward(model)
            wan = model.model.diffusion_model
            dense = lambda: dense_forward(wan, x[:1], x[1:2], t[:1], context[:1], clip[:1], effect, "B")  # noqa: E731
            results["dense_ref_s"], results["dense_ref_peak_mb"] = _timed(dense, args.repeats, device)
        else:
            results["dense_ref_s"] = None
            results["dense_ref_note"] = f"skipped: a dense [{2 * tokens}]² mask is beyond {DENSE_MAX_TOKENS}² tokens"
    results["ratio_b"] = results["dual_b_s"] / results["stock_s"]
    results["ratio_c"] = results["dual_c_s"] / results["stock_s"]
    if results.get("dense_ref_s"):
        results["faster_than_dense"] = results["dual_b_s"] < results["dense_ref_s"] and \
            results["dual_c_s"] < results["dense_ref_s"]
    results.update({
        "targets": {"ratio_c_max": 2.2, "ratio_b_max": 2.8},
        "shape": {"preset": args.preset, "dim": cfg["dim"], "blocks": n_blocks, "heads": cfg["dim"] // 128,
                  "frames": cfg["frames"], "height": cfg["height"], "width": cfg["width"],
                  "tokens_per_branch": tokens, "effect_blocks": cfg["effect_blocks"],
                  "effect_rank": args.effect_rank, "quality_rank": args.quality_rank, "dtype": cfg["dtype"]},
        "threads": torch.get_num_threads(), "device": str(device),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "repeats": args.repeats, "comfyui": comfy_host.comfyui_version(comfy_path),
        "torch": torch.__version__,
        "peak_memory_note": None if device.type == "cuda" else "per-variant peak memory is not measurable on CPU",
    })
    print(json.dumps(results, indent=None if args.json else 2))


if __name__ == "__main__":
    main()
