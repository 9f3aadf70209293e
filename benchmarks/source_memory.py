"""Peak memory and time of a headless run at source resolution, against the source's size and length.

    source scripts/env.sh && "$OMNIMATTE_PY" -m benchmarks.source_memory --json

Each case scales a ``../shared/data`` clip and its mask to width×height and loops them
(forwards, then backwards) to the frame count, then runs ``omnimatte_run.run_workflow --toy`` at a small
working size (the embedded toy models, 2 steps): the decomposition is cheap, so what is measured
is the cost of bringing frames in and layers out at source size. Peak RSS is the child
process's own (``wait4``). Goals (docs/performance.md): 1280×690×240 ≤ 6 GB, 1920×1080×240 ≤ 8 GB.
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
from pathlib import Path

import av

from omnimatte_host import comfy_host
from omnimatte_eval.clips import shared_clips

log = logging.getLogger("benchmarks.source_memory")
CACHE = Path.home() / ".cache" / "easy-omnimatte" / "bench-clips"
CASES = ((1280, 690, 240), (1920, 1080, 240))
GOALS_MB = {(1280, 690, 240): 6144, (1920, 1080, 240): 8192}
WORKING = ("128", "80")


def _ping_pong(frames: int, length: int) -> list[int]:
    cycle = list(range(length)) + list(range(length - 2, 0, -1))
    return [cycle[i % len(cycle)] for i in range(frames)]


def scaled_clip(source: Path, target: Path, width: int, height: int, frames: int) -> Path:
    """``source`` scaled to width×height and looped to ``frames`` frames (H.264, crf 16), cached."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as src:
        originals = [f.reformat(width=width, height=height, format="yuv420p") for f in src.decode(video=0)]
        rate = src.streams.video[0].average_rate or 16
    partial = target.with_suffix(".part.mp4")
    with av.open(str(partial), "w") as dst:
        stream = dst.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "16", "preset": "ultrafast"}
        for index in _ping_pong(frames, len(originals)):
            frame = av.VideoFrame.from_ndarray(originals[index].to_ndarray(format="rgb24"), format="rgb24")
            for packet in stream.encode(frame):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    partial.rename(target)
    return target


def run_case(width: int, height: int, frames: int, threads: int | None) -> dict:
    name = f"{width}x{height}x{frames}"
    clip = shared_clips() / "boys-beach"
    video = scaled_clip(clip / "input_video.mp4", CACHE / f"{name}.mp4", width, height, frames)
    mask = scaled_clip(clip / "mask_00.mp4", CACHE / f"{name}_mask.mp4", width, height, frames)
    with tempfile.TemporaryDirectory(prefix="omnimatte-bench-") as out:
        cmd = [sys.executable, "-m", "omnimatte_run.run_workflow", "--toy", "--video", str(video), "--mask", str(mask),
               "--out", out, "--width", WORKING[0], "--height", WORKING[1], "--steps", "2"]
        if threads:
            cmd += ["--threads", str(threads)]
        started = time.monotonic()
        with open(Path(out) / "stdout.txt", "w+") as stdout, open(Path(out) / "stderr.txt", "w+") as stderr:
            child = subprocess.Popen(cmd, cwd=comfy_host.PACK_DIR, stdout=stdout, stderr=stderr, text=True)
            _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
            child.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - started
            stdout.seek(0), stderr.seek(0)
            printed, errors = stdout.read(), stderr.read()
        if child.returncode != 0:
            raise RuntimeError(f"{name}: the runner failed ({child.returncode}):\n{errors[-3000:]}")
        stages = _stage_seconds(Path(out) / "omnimatte-run.log")
    peak_mb = usage.ru_maxrss / 1024  # Linux reports KiB
    return {"width": width, "height": height, "frames": frames, "peak_rss_mb": round(peak_mb),
            "seconds": round(seconds, 1), "goal_mb": GOALS_MB.get((width, height, frames)), "stages": stages,
            "files": len(json.loads(printed[printed.index("{"):])["files"])}


def _stage_seconds(log_path: Path) -> dict[str, float]:
    """Seconds between the runner's 'running <node>' lines, per node title (from the run's log file)."""
    import datetime

    stages, previous = {}, None
    for line in log_path.read_text().splitlines():
        stamp, _, rest = line.partition(" INFO omnimatte.run: ")
        if not rest or not (rest.startswith("running ") or rest.startswith("done in")):
            continue
        when = datetime.datetime.strptime(stamp[:23], "%Y-%m-%d %H:%M:%S,%f")
        if previous:
            stages[previous[0]] = round(stages.get(previous[0], 0) + (when - previous[1]).total_seconds(), 2)
        previous = (rest.removeprefix("running ").rsplit(" (", 1)[0], when)
    return stages


def writer_breakdown(width: int, height: int, frames: int) -> dict[str, float]:
    """Seconds of Save Omnimatte Layers' core on one cached case, per layer set (decoding included)."""
    import torch
    from fractions import Fraction

    from omnimatte_core import frame_geometry, layer_writer, video_files

    source = str(CACHE / f"{width}x{height}x{frames}.mp4")
    work_h, work_w = int(WORKING[1]), int(WORKING[0])
    background = video_files.read_resized(source, work_h, work_w, frame_geometry.resize_frames)
    alpha = torch.linspace(0, 1, work_w).expand(frames, work_h, work_w).contiguous()
    timings = {}
    started = time.monotonic()
    sum(chunk.shape[0] for chunk in video_files.iter_chunks(source, 8))
    timings["decode only"] = round(time.monotonic() - started, 1)
    for layers in (("alpha",), ("background",), ("rgba",), ("rgba", "alpha", "background")):
        with tempfile.TemporaryDirectory() as out:
            started = time.monotonic()
            request = layer_writer.WriteRequest(Path(out), layers, Fraction(16))
            layer_writer.write_layers(video_files.iter_chunks(source, 8), background, alpha, request)
            timings["+".join(layers)] = round(time.monotonic() - started, 1)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--case", action="append", help="WIDTHxHEIGHTxFRAMES (default: the two goal cases)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--writer-breakdown", action="store_true",
                        help="also time the layer writer alone per layer set on each case's cached clip")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cases = [tuple(int(v) for v in c.split("x")) for c in args.case] if args.case else CASES
    results = []
    for width, height, frames in cases:
        results.append(run_case(width, height, frames, args.threads))
        if args.writer_breakdown:
            results[-1]["writer_seconds"] = writer_breakdown(width, height, frames)
        log.info("%s", results[-1])
    report = {"cases": results, "working_size": "x".join(WORKING), "models": "toy (embedded), 2 steps",
              "host_cpus": os.cpu_count()}
    print(json.dumps(report, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
