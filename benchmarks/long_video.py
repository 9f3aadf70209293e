"""Long clips in temporal windows: cost against length, and seams, on the toy world (docs/performance.md).

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.long_video --json
    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.long_video --preset wan1.3b --json   # GPU

``--preset wan1.3b`` measures 81 and 161 frames at 480×832 with random models at Casper's size, written
as ``benchmarks.decompose --preset wan1.3b`` writes them, through the same nodes with the sampler's
default windows (81 frames, 32 overlap), warmed up on 17 frames; it reports cost only (``ratios``:
the last length over the first), no seams (random weights have none to measure). ``--preset cpu``
is the same on decompose's tiny models (9 and 17 frames at 112×64, windows of 9) for dry runs.

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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LENGTHS = (17, 81, 161, 241)
SIZE = 256
STEPS = 4
TOY_WINDOW = 17  # video frames: the toy models were trained on 17-frame clips
SEAM_CLIPS = ((0, 49), (1, 65), (2, 97))  # (held-out index, frames)
SEAM_OVERLAPS = (4, 8, 12)
MMAP_THRESHOLD = 1 << 20  # glibc: every block ≥ 1 MiB mmapped and returned when freed, so RSS follows live
# tensors (with its default sliding threshold the same run's peak moved by ±25 % between runs)
ROOT = Path(__file__).resolve().parents[1]
PLOT = ROOT / "docs" / "images" / "long_video_seams.png"


@dataclass(frozen=True)
class Preset:
    """What one ``--preset`` measures: the toy world's models, or random ones at a decompose preset's size."""

    lengths: tuple[int, ...]
    width: int
    height: int
    window_frames: int
    window_overlap: int | None  # None: the sampler's default share scaled to the window (toy_overlap)
    warmup_frames: int | None  # None: warm up on the whole clip
    models: str | None  # a benchmarks.decompose preset; None: the toy world's trained models


PRESETS = {
    "toy": Preset(LENGTHS, SIZE, SIZE, TOY_WINDOW, None, None, None),
    # Casper's size: the sampler's defaults (omnimatte_core.windows: 81-frame windows, 32 frames of overlap);
    # the warm-up only loads the models and the kernels, so 17 frames do (peaks are reset after it)
    "wan1.3b": Preset((81, 161), 832, 480, 81, 32, 17, "wan1.3b"),
    # the wan1.3b plumbing on a CPU in seconds: decompose's tiny models, 17 frames take two windows of 9
    "cpu": Preset((9, 17), 112, 64, 9, 4, 5, "cpu"),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=PRESETS, default="toy", help="toy: the toy world (cost and seams); "
                   "wan1.3b: random models at Casper's size, 480×832 (cost only); cpu: its tiny dry run")
    p.add_argument("--lengths", type=int, nargs="+", default=None, help="clip lengths (default: the preset's)")
    p.add_argument("--overlap", type=int, default=None, help="window overlap in frames (default: the sampler's "
                                                             "default scaled to the toy window)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--plot", action="store_true", help="write docs/images/long_video_seams.png")
    p.add_argument("--json", action="store_true", help="print one JSON object only")
    p.add_argument("--case", type=int, help=argparse.SUPPRESS)  # internal: one length in this process
    p.add_argument("--models", type=Path, help=argparse.SUPPRESS)  # internal: the preset's written model files
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


@dataclass
class Setup:
    """The loaded models of one case and the expert files the sampler gets."""

    models: object  # omnimatte_eval.toy_eval.ToyModels: MODEL (shift 5), VAE, CONDITIONING
    effect: str
    quality: str
    vision: object | None  # CLIP_VISION for an I2V-type model


def load_setup(preset: Preset, folder: Path | None) -> Setup:
    """The toy world's models, or the decompose preset's random files in ``folder``, through the loader nodes."""
    from omnimatte_eval import toy_eval
    from omnimatte_workflows.toy_graph import TOY_FILES

    if preset.models is None:
        return Setup(toy_eval.load_toy_models(), TOY_FILES["effect_expert"], TOY_FILES["quality_expert"], None)
    from benchmarks.decompose import PRESETS as MODEL_PRESETS
    from benchmarks.decompose import register_models

    cfg = MODEL_PRESETS[preset.models]
    names = register_models(cfg, folder)
    (unet,) = toy_eval.call_node("UNETLoader", unet_name=names["unet"], weight_dtype="default")
    (model,) = toy_eval.call_node("ModelSamplingSD3", model=unet, shift=5.0)
    (vae,) = toy_eval.call_node("VAELoader", vae_name=names["vae"])
    (text,) = toy_eval.call_node("OmnimatteLoadTextEmbeds", embeds_name=names["text"])
    vision = toy_eval.call_node("CLIPVisionLoader", clip_name=names["clip_vision"])[0] if cfg["i2v"] else None
    return Setup(toy_eval.ToyModels(model, vae, text), names["effect"], names["quality"], vision)


def _call(name: str, node: str, **inputs):
    from omnimatte_eval import toy_eval

    return toy_eval.call_node(node, **inputs)


def decompose_chain(setup: Setup, preset: Preset, video, mask, steps: int, overlap: int, stage=_call):
    """Conditioning → sampler → decode through the nodes; ``stage(name, node, **inputs)`` runs each one.
    → (trimask, plate, matte, layers)."""
    from omnimatte_eval import toy_eval

    (experts,) = toy_eval.call_node("LoadOmnimatteExperts", effect_expert=setup.effect, effect_strength=1.0,
                                    quality_expert=setup.quality, quality_strength=1.0)
    vision = {}
    if setup.vision is not None:  # frame 0, whole (Casper's I2V conditioning)
        (vision["clip_vision_output"],) = stage("clip_vision", "CLIPVisionEncode", clip_vision=setup.vision,
                                                image=video[:1], crop="none")
    text = setup.models.text
    positive, negative, latent, trimask = stage(
        "conditioning", "OmnimatteConditioning", positive=text, negative=text, vae=setup.models.vae, video=video,
        object_mask=mask, width=preset.width, height=preset.height, mask_threshold=0.5, dilation=-1, **vision)
    background, alpha = stage("sampler", "BranchWanSampler", model=setup.models.model, experts=experts,
                              positive=positive, negative=negative, latent=latent, seed=43, steps=steps, cfg=1.0,
                              sampler_name="euler", scheduler="simple", tau=0.5,
                              window_frames=preset.window_frames, window_overlap=overlap)
    plate, matte, layers = stage("decode", "OmnimatteDecode", vae=setup.models.vae, background=background,
                                 alpha=alpha)
    return trimask, plate, matte, layers


def run_case(frames: int, preset: Preset, overlap: int, threads: int | None, folder: Path | None) -> dict:
    """One length in this process: load, then per stage (conditioning, sampler, decode) the peak RSS
    above the level that stage started from; ``peak_rss_mb`` is the whole run's above the loaded
    baseline, ``output_mb`` the decoded layers' own size."""
    import torch

    from omnimatte_host import comfy_host

    comfy_host.import_comfy(threads=threads)
    comfy_host.load_nodes_with_pack()
    from omnimatte_core import vae_stream

    setup = load_setup(preset, folder)
    h, w = preset.height, preset.width
    video = torch.rand(frames, h, w, 3)
    mask = torch.zeros(frames, h, w)
    mask[:, h * 3 // 8:h * 5 // 8, w * 3 // 8:w * 5 // 8] = 1.0
    warm = preset.warmup_frames or frames
    with torch.inference_mode():
        decompose_chain(setup, preset, video[:warm], mask[:warm], 1, overlap)  # loads the models
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stages, stage_seconds, start = {}, {}, time.perf_counter()
    Path("/proc/self/clear_refs").write_text("5")
    base = _rss_mb("VmRSS")

    def stage(name, node, **inputs):
        Path("/proc/self/clear_refs").write_text("5")
        level, started = _rss_mb("VmRSS"), time.perf_counter()
        outputs = _call(name, node, **inputs)
        if cuda:
            torch.cuda.synchronize()
        stages[name] = round(_rss_mb("VmHWM") - level)
        stage_seconds[name] = round(time.perf_counter() - started, 3)
        return outputs

    with torch.inference_mode():
        trimask, plate, matte, layers = decompose_chain(setup, preset, video, mask, STEPS, overlap, stage)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    assert matte.shape[0] == frames
    peak = _rss_mb("VmHWM") - base
    output_mb = _held_mb(trimask, plate, matte, layers.backgrounds, layers.alphas, layers.plate)
    result = {"frames": frames, "seconds": round(seconds, 2), "peak_rss_mb": round(peak),
              "output_mb": round(output_mb), "working_peak_mb": round(peak - output_mb), "stage_peak_mb": stages,
              "stage_seconds": stage_seconds}
    if cuda:
        result["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20)
    result["device"] = torch.cuda.get_device_name() if cuda else "cpu"
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


def cost_rows(preset: str, lengths: list[int], overlap: int, threads: int | None, folder: Path | None) -> list[dict]:
    rows = []
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    for frames in lengths:
        cmd = [sys.executable, "-m", "benchmarks.long_video", "--preset", preset, "--case", str(frames),
               "--overlap", str(overlap)]
        if threads:
            cmd += ["--threads", str(threads)]
        if folder is not None:
            cmd += ["--models", str(folder)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": path, "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)})
        if done.returncode:
            raise RuntimeError(f"{frames} frames failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def seam_rows(threads: int | None, plot: bool, marked_overlap: int) -> dict:
    from omnimatte_host import comfy_host
    from omnimatte_eval import toy_eval
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


def cost_summary(rows: list[dict], preset: Preset, overlap: int) -> dict:
    """The per-length rows as lists, one key per figure."""
    from omnimatte_core.windows import WindowPlan

    plan = WindowPlan.from_video_frames(preset.window_frames, overlap)
    window = {"window_frames": preset.window_frames, "window_overlap": overlap, "steps": STEPS}
    if preset.models is None:
        window.update(size=SIZE, windows_at_241=plan.count((241 - 1) // 4 + 1))
    else:
        window.update(width=preset.width, height=preset.height, models=f"benchmarks.decompose --preset "
                      f"{preset.models} (random weights)", warmup_frames=preset.warmup_frames,
                      windows={r["frames"]: plan.count((r["frames"] - 1) // 4 + 1) for r in rows})
    result = {"frames": [r["frames"] for r in rows], "seconds": [r["seconds"] for r in rows],
              "peak_rss_mb": [r["peak_rss_mb"] for r in rows], "window": window,
              "seconds_per_frame": [round(r["seconds"] / r["frames"], 4) for r in rows]}
    if "peak_cuda_mb" in rows[0]:
        result["peak_cuda_mb"] = [r["peak_cuda_mb"] for r in rows]
    result["output_mb"] = [r["output_mb"] for r in rows]
    result["working_peak_mb"] = [r["working_peak_mb"] for r in rows]
    for key in ("stage_peak_mb", "stage_seconds"):
        result[key] = {name: [r[key][name] for r in rows] for name in rows[0][key]}
    return result


def _ratio(a: float, b: float) -> float:
    return round(a / max(b, 1e-9), 3)


def toy_ratios(rows: list[dict]) -> dict:
    """241 frames over 81 (the toy table's memory goal: working peak ≤ 1.25×)."""
    by_frames = {r["frames"]: r for r in rows}
    if not (81 in by_frames and 241 in by_frames):
        return {}
    long, short = by_frames[241], by_frames[81]
    return {"peak_241_over_81": _ratio(long["peak_rss_mb"], short["peak_rss_mb"]),
            "working_peak_241_over_81": _ratio(long["working_peak_mb"], short["working_peak_mb"]),
            "sampler_peak_241_over_81": _ratio(long["stage_peak_mb"]["sampler"], short["stage_peak_mb"]["sampler"])}


def length_ratios(rows: list[dict]) -> dict:
    """The longest clip over the shortest: seconds and peaks (issue 27's goal at 161 / 81 frames on a GPU:
    seconds ≤ 2.2×, peak CUDA memory ≤ 1.25×)."""
    short, long = rows[0], rows[-1]
    ratios = {key: _ratio(long[key], short[key]) for key in ("seconds", "peak_cuda_mb", "working_peak_mb")
              if key in short}
    return {"of": f"{long['frames']} / {short['frames']} frames", **ratios,
            "goal": {"of": "161 / 81 frames", "seconds_max": 2.2, "peak_cuda_mb_max": 1.25}}


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING if args.json or args.case else logging.INFO)
    preset = PRESETS[args.preset]
    overlap = args.overlap if args.overlap is not None else preset.window_overlap
    overlap = toy_overlap() if overlap is None else overlap
    if args.case:
        print(json.dumps(run_case(args.case, preset, overlap, args.threads, args.models)))
        return
    lengths = args.lengths or list(preset.lengths)
    if preset.models is None:
        rows = cost_rows(args.preset, lengths, overlap, args.threads, None)
        result = {**cost_summary(rows, preset, overlap), **toy_ratios(rows),
                  "seams": seam_rows(args.threads, args.plot, overlap)}
        from omnimatte_core import vae_stream

        result["vae_stream_fallbacks"] = fallback_totals(rows, vae_stream.fallback_counts())
    else:
        rows = model_rows(args.preset, lengths, overlap, args.threads)
        result = {"preset": args.preset, **cost_summary(rows, preset, overlap), "ratios": length_ratios(rows),
                  "vae_stream_fallbacks": fallback_totals(rows), "device": rows[0]["device"]}
    print(json.dumps(result, indent=None if args.json else 1))


def model_rows(preset: str, lengths: list[int], overlap: int, threads: int | None) -> list[dict]:
    """Write the preset's random models once (benchmarks.decompose's files), then one process per length."""
    from omnimatte_host import comfy_host

    comfy_host.import_comfy(threads=threads)
    from benchmarks.decompose import PRESETS as MODEL_PRESETS
    from benchmarks.decompose import write_models

    with tempfile.TemporaryDirectory(prefix="omnimatte-long-video-") as folder:
        write_models(MODEL_PRESETS[PRESETS[preset].models], Path(folder))
        return cost_rows(preset, lengths, overlap, threads, Path(folder))


if __name__ == "__main__":
    main()
