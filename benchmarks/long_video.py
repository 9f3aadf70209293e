"""Long clips in temporal windows: cost against length, and seams, on the toy world (docs/performance.md).

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.long_video --json

Prints one JSON object:
- ``frames``, ``seconds``, ``peak_rss_mb``: per clip length (17, 81, 161, 241 by default), the
  decomposition through the nodes (conditioning, sampler, decode) at a 256×256 working size with the
  toy models, each length in a fresh process (glibc's mmap threshold fixed at 1 MiB, so freed
  tensors leave the RSS and runs repeat within a few MB); peak RSS is measured above that process's resident
  size after the models are loaded (``/proc/self/clear_refs`` resets the high-water mark there), so
  loading does not count, and the source is made at the working size, so source-size frames do not
  either (benchmarks.source_memory covers those). ``output_mb``: the node outputs still held at the
  end (the trimask MASK, the decoded plate and alpha; a layer that is a view of another counts
  once), which grow with the clip by nature; ``working_peak_mb``: ``peak_rss_mb`` minus them, what
  the pack holds beyond its input and output; ``stage_peak_mb``: each node's own peak above the
  level it started from. ``peak_cuda_mb`` is added on a GPU;
- ``window``: the window settings (video frames) and the windows a 241-frame clip takes;
- ``working_peak_241_over_81`` (goal ≤ 1.25), ``peak_241_over_81`` (outputs included),
  ``sampler_peak_241_over_81`` and ``seconds_per_frame``;
- ``seams``: on held-out toy clips of 49–97 frames at the toy size (windows of 17 frames), per
  overlap setting, ``seam_error_ratio`` = the per-frame alpha and background error in frames where
  windows overlap over the error in the other frames (goal ≤ 1.10), and the same errors with the
  whole clip as one window. ``--plot`` writes the per-frame error curves (windowed and one window)
  to docs/images/long_video_seams.png;
- ``vae_stream_fallbacks``: how often the VAE fell back from the streamed to the whole-clip path, by
  kind (``{}`` when it never did; otherwise the memory figures are not the streamed path's).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

LENGTHS = (17, 81, 161, 241)
SIZE = 256
STEPS = 4
TOY_WINDOW = 17  # video frames: the toy models were trained on 17-frame clips
SEAM_CLIPS = ((0, 49), (1, 65), (2, 97))  # (held-out index, frames)
SEAM_OVERLAPS = (4, 8, 12)
MMAP_THRESHOLD = 1 << 20  # glibc: every block ≥ 1 MiB mmapped and returned when freed, so RSS follows live
# tensors (with its default sliding threshold the same run's peak moved by ±25 % between runs)
PLOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "long_video_seams.png"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    p.add_argument("--overlap", type=int, default=None, help="window overlap in frames (default: the sampler's "
                                                             "default scaled to the toy window)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--plot", action="store_true", help="write docs/images/long_video_seams.png")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    p.add_argument("--case", type=int, help=argparse.SUPPRESS)  # internal: one length in this process
    return p.parse_args()


def toy_overlap() -> int:
    """The sampler's default overlap as a share of its window, at the toy window (whole latent frames)."""
    from omnimatte_core.windows import DEFAULT_OVERLAP_FRAMES, TRAINED_FRAMES

    return 4 * round(DEFAULT_OVERLAP_FRAMES / TRAINED_FRAMES * (TOY_WINDOW - 1) / 4)


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_case(frames: int, overlap: int, threads: int | None) -> dict:
    """One length in this process: load, then per stage (conditioning, sampler, decode) the peak RSS
    above the level that stage started from; ``peak_rss_mb`` is the whole run's above the loaded
    baseline, ``output_mb`` the decoded layers' own size."""
    import torch

    from scripts import comfy_host, toy_eval

    comfy_host.import_comfy(threads=threads)
    comfy_host.load_nodes_with_pack()
    from omnimatte_core import vae_stream
    from scripts.build_workflows import TOY_FILES

    models = toy_eval.load_toy_models()
    video = torch.rand(frames, SIZE, SIZE, 3)
    mask = torch.zeros(frames, SIZE, SIZE)
    mask[:, 96:160, 96:160] = 1.0
    clip = toy_eval.PlainClip(video, mask)
    toy_eval.decompose(models, clip, steps=1, size=SIZE, window_frames=TOY_WINDOW, window_overlap=overlap)  # warm
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    stages, start = {}, time.perf_counter()
    Path("/proc/self/clear_refs").write_text("5")
    base = _rss_mb("VmRSS")

    def stage(name, node, **inputs):
        Path("/proc/self/clear_refs").write_text("5")
        level = _rss_mb("VmRSS")
        outputs = toy_eval.call_node(node, **inputs)
        stages[name] = round(_rss_mb("VmHWM") - level)
        return outputs

    with torch.inference_mode():
        (experts,) = toy_eval.call_node("LoadOmnimatteExperts", effect_expert=TOY_FILES["effect_expert"],
                                        effect_strength=1.0, quality_expert=TOY_FILES["quality_expert"],
                                        quality_strength=1.0)
        positive, negative, latent, trimask = stage(
            "conditioning", "OmnimatteConditioning", positive=models.text, negative=models.text, vae=models.vae,
            video=video, object_mask=mask, width=SIZE, height=SIZE, mask_threshold=0.5, dilation=-1)
        background, alpha = stage("sampler", "BranchWanSampler", model=models.model, experts=experts,
                                  positive=positive, negative=negative, latent=latent, seed=43, steps=STEPS, cfg=1.0,
                                  sampler_name="euler", scheduler="simple", tau=0.5, window_frames=TOY_WINDOW,
                                  window_overlap=overlap)
        plate, matte, layers = stage("decode", "OmnimatteDecode", vae=models.vae, background=background,
                                     alpha=alpha)
    seconds = time.perf_counter() - start
    assert matte.shape[0] == frames
    peak = _rss_mb("VmHWM") - base
    output_mb = _held_mb(trimask, plate, matte, layers.backgrounds, layers.alphas, layers.plate)
    result = {"frames": frames, "seconds": round(seconds, 2), "peak_rss_mb": round(peak),
              "output_mb": round(output_mb), "working_peak_mb": round(peak - output_mb), "stage_peak_mb": stages}
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    result["vae_stream_fallbacks"] = vae_stream.fallback_counts()
    return result


def fallback_totals(rows: list[dict], *more: dict[str, int]) -> dict[str, int]:
    """Whole-clip VAE fall-backs over every length's process and this one, by kind: a figure measured on a
    fall-back is not the streamed path's, so the JSON says how many there were ({} when none)."""
    totals: dict[str, int] = {}
    for counts in [r["vae_stream_fallbacks"] for r in rows] + list(more):
        for kind, n in counts.items():
            totals[kind] = totals.get(kind, 0) + n
    return totals


def _held_mb(*tensors) -> float:
    """MB of the distinct storages behind the node outputs (a view of another output counts once)."""
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
    return sum(storages.values()) / 2**20


def cost_rows(lengths: list[int], overlap: int, threads: int | None) -> list[dict]:
    rows = []
    for frames in lengths:
        cmd = [sys.executable, "-m", "benchmarks.long_video", "--case", str(frames), "--overlap", str(overlap)]
        if threads:
            cmd += ["--threads", str(threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                                   "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)})
        if done.returncode:
            raise RuntimeError(f"{frames} frames failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def seam_rows(threads: int | None, plot: bool, marked_overlap: int) -> dict:
    from scripts import comfy_host, toy_eval
    from training.toy_data import long_held_out_clip

    comfy_host.import_comfy(threads=threads)
    comfy_host.load_nodes_with_pack()
    models = toy_eval.load_toy_models()
    out, curves = {}, {}
    clips = [long_held_out_clip(index, frames) for index, frames in SEAM_CLIPS]
    whole = [toy_eval.frame_errors(c, toy_eval.decompose(models, c, window_frames=0)) for c in clips]
    for overlap in SEAM_OVERLAPS:
        windowed = [toy_eval.frame_errors(c, toy_eval.decompose(models, c, window_frames=TOY_WINDOW,
                                                                window_overlap=overlap)) for c in clips]
        out[str(overlap)] = toy_eval.seam_summary(clips, windowed, whole, TOY_WINDOW, overlap)
        curves[overlap] = windowed
    if plot:
        toy_eval.plot_seams(clips, curves, whole, TOY_WINDOW, PLOT, marked_overlap)
    return out


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING if args.json or args.case else logging.INFO)
    overlap = args.overlap if args.overlap is not None else toy_overlap()
    if args.case:
        print(json.dumps(run_case(args.case, overlap, args.threads)))
        return
    rows = cost_rows(args.lengths, overlap, args.threads)
    from omnimatte_core.windows import WindowPlan

    plan = WindowPlan.from_video_frames(TOY_WINDOW, overlap)
    by_frames = {r["frames"]: r for r in rows}
    result = {"frames": [r["frames"] for r in rows], "seconds": [r["seconds"] for r in rows],
              "peak_rss_mb": [r["peak_rss_mb"] for r in rows],
              "window": {"window_frames": TOY_WINDOW, "window_overlap": overlap, "size": SIZE, "steps": STEPS,
                         "windows_at_241": plan.count((241 - 1) // 4 + 1)},
              "seconds_per_frame": [round(r["seconds"] / r["frames"], 4) for r in rows]}
    if "peak_cuda_mb" in rows[0]:
        result["peak_cuda_mb"] = [r["peak_cuda_mb"] for r in rows]
    result["output_mb"] = [r["output_mb"] for r in rows]
    result["working_peak_mb"] = [r["working_peak_mb"] for r in rows]
    result["stage_peak_mb"] = {name: [r["stage_peak_mb"][name] for r in rows] for name in rows[0]["stage_peak_mb"]}
    if 81 in by_frames and 241 in by_frames:
        ratio = lambda a, b: round(a / max(b, 1), 3)  # noqa: E731
        result["peak_241_over_81"] = ratio(by_frames[241]["peak_rss_mb"], by_frames[81]["peak_rss_mb"])
        result["working_peak_241_over_81"] = ratio(by_frames[241]["working_peak_mb"],
                                                   by_frames[81]["working_peak_mb"])
        result["sampler_peak_241_over_81"] = ratio(by_frames[241]["stage_peak_mb"]["sampler"],
                                                   by_frames[81]["stage_peak_mb"]["sampler"])
    result["seams"] = seam_rows(args.threads, args.plot, overlap)
    from omnimatte_core import vae_stream

    result["vae_stream_fallbacks"] = fallback_totals(rows, vae_stream.fallback_counts())
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
