"""``run.sh --batch --ray``: clips across Ray workers on a local cluster, a worker killed mid-clip and its clip
run again elsewhere, the layers equal to a single-process batch's (issue 25, part 2). Ray is an optional
dependency: without it these tests skip, naming the install, and ``--ray`` says what to install.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from harness.data import shared_clips
from harness.toy_host import needs_toy_world
from omnimatte_eval.clips import cut_clip
from omnimatte_host.comfy_host import PACK_DIR

RUN_SH = PACK_DIR / "scripts" / "run.sh"
TOY_FAST = ["--toy", "--width", "64", "--height", "48", "--steps", "1", "--threads", "1"]
CLIPS = {"beach": ("boys-beach", 13), "draw": ("animator-draw", 9), "draw_long": ("animator-draw", 17)}


def test_ray_is_never_imported_by_the_single_and_batch_paths_and_its_absence_is_named(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
            "from omnimatte_run import run_workflow, batch, batch_clips, batch_report, graph_run, batch_ray\n"
            "assert run_workflow.parse_args(['--batch', 'x']).ray is None\n"
            f"sys.exit(run_workflow.main(['--batch', {str(tmp_path)!r}, '--out', {str(tmp_path / 'out')!r}, '--ray']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=PACK_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "--ray needs Ray, an optional dependency" in done.stderr and 'pip install "ray[default]"' in done.stderr
    assert "checking inputs" not in done.stderr  # said before any clip is looked at


@needs_toy_world
def test_ray_workers_survive_a_killed_worker_and_match_a_single_process_batch(tmp_path):
    pytest.importorskip("ray", reason='Ray is optional: "$OMNIMATTE_PY" -m pip install "ray[default]"')
    batch_dir = tmp_path / "clips"
    for name, (source, frames) in CLIPS.items():
        for stem in ("input_video", "mask_00"):
            cut_clip(shared_clips() / source / f"{stem}.mp4", batch_dir / name / f"{stem}.mp4", frames)
    single = subprocess.run(["bash", str(RUN_SH), "--batch", str(batch_dir), "--out", str(tmp_path / "single"),
                             *TOY_FAST], capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]

    out = tmp_path / "ray"
    process = subprocess.Popen(["bash", str(RUN_SH), "--batch", str(batch_dir), "--out", str(out), *TOY_FAST,
                                "--ray", "--workers", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        killed = kill_a_worker_mid_clip(out, process)
        stdout, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, stderr[-4000:]
    report = json.loads((out / "batch_report.json").read_text())
    assert {c["clip"]: c["status"] for c in report["clips"]} == dict.fromkeys(CLIPS, "ran")
    assert "its worker died" in stderr, stderr[-4000:]
    handed = re.findall(r"clip (\w+) \(\d+ frames\): handed to a worker", (out / "omnimatte-run.log").read_text())
    assert handed[:2] == ["draw_long", "beach"] and len(handed) == 4  # longest first; the killed clip twice
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.is_dir()]  # the dead one's removed
    assert f".partial-{killed}" not in " ".join(p.name for p in out.iterdir())
    for name in CLIPS:
        assert_same_layers(tmp_path / "single" / f"{name}-mask_00", out / f"{name}-mask_00")


def kill_a_worker_mid_clip(out: Path, process: subprocess.Popen, timeout_s: float = 400) -> int:
    """SIGKILL the worker whose staging folder (named with its pid) first holds a written file; → that pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        for stage in out.glob(".*.partial-*") if out.is_dir() else []:
            if any(p.is_file() for p in stage.rglob("*")):
                pid = int(stage.name.rpartition(".partial-")[2])
                os.kill(pid, signal.SIGKILL)
                return pid
        time.sleep(0.005)
    raise AssertionError(f"no worker was caught writing a clip (exit {process.poll()}):\n"
                         f"{process.stderr.read()[-3000:] if process.poll() is not None else ''}")


def assert_same_layers(expected: Path, got: Path) -> None:
    """Every PNG and the background video within 1/255 of the single-process run's."""
    names = sorted(p.relative_to(expected) for p in expected.rglob("*.png"))
    assert names and names == sorted(p.relative_to(got) for p in got.rglob("*.png")), got
    for name in names:
        a, b = (np.asarray(Image.open(root / name), dtype=np.int32) for root in (expected, got))
        assert np.abs(a - b).max() <= 1, (got / name)
    a, b = (video(root / "background" / "background.mp4") for root in (expected, got))
    assert a.shape == b.shape and np.abs(a - b).max() <= 1, got


def video(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.int32)
