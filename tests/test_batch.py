"""``run.sh --batch``: a folder of clips with the models loaded once, one bad clip reported while the rest
go on, finished clips skipped on the next run, and a batch killed mid-clip that completes on a restart
with no mixed or half folders (issue 25).

Real ComfyUI and the embedded toy models at a small working size on 9-frame cuts of the shared clips;
the layers are written at the clips' source size (640×384).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from harness.data import mapped_clip, shared_clips, text_as_video
from harness.toy_host import needs_toy_world
from omnimatte_eval.clips import cut_clip
from omnimatte_host.comfy_host import PACK_DIR

RUN_SH = PACK_DIR / "scripts" / "run.sh"
FRAMES, SIZE = 9, (640, 384)
TOY_FAST = ["--toy", "--width", "64", "--height", "48", "--steps", "1", "--threads", "1"]
GOOD = {"beach": ["beach-mask_00"], "beach_two": ["beach_two", "beach_two-mask_00", "beach_two-mask_01"],
        "draw": ["draw-mask_00"]}
BROKEN_REASON = "is not a readable video"

pytestmark = needs_toy_world


@pytest.fixture
def batch_dir(tmp_path_factory) -> Path:
    """Four clips in Gen-Omnimatte's layout: two good ones, one with two masks, one broken video; a folder with
    a video but no mask, and a clip whose mask is black (it passes the check with a warning and fails in the
    graph, after the models are loaded)."""
    folder = tmp_path_factory.mktemp("batch")
    clips = shared_clips()
    layout = {"draw": ("animator-draw", ["mask_00"]), "beach": ("boys-beach", ["mask_00"]),
              "beach_two": ("boys-beach", ["mask_00", "mask_01"])}
    for name, (source, masks) in layout.items():
        for stem in ["input_video", *masks]:
            cut_clip(clips / source / f"{stem}.mp4", folder / name / f"{stem}.mp4", FRAMES)
        shutil.copy(clips / source / "prompt.json", folder / name / "prompt.json")
    (folder / "broken").mkdir()
    text_as_video(folder / "broken" / "input_video.mp4")
    cut_clip(clips / "animator-draw" / "mask_00.mp4", folder / "broken" / "mask_00.mp4", FRAMES)
    cut_clip(clips / "animator-draw" / "input_video.mp4", folder / "no_mask" / "input_video.mp4", FRAMES)
    shutil.copytree(folder / "draw", folder / "black_mask")
    mapped_clip(folder / "draw" / "mask_00.mp4", folder / "black_mask" / "mask_00.mp4", lambda a: a * 0)
    return folder


def batch(batch_dir: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(["bash", str(RUN_SH), "--batch", str(batch_dir), "--out", str(out), *TOY_FAST, *extra],
                          capture_output=True, text=True, timeout=600)
    return done, time.monotonic() - started


def report(out: Path) -> dict:
    return {c["clip"]: c for c in json.loads((out / "batch_report.json").read_text())["clips"]}


def assert_complete(folder: Path) -> None:
    """A whole layer folder at the source size: every frame of rgba/ and alpha/, and the background video."""
    for layer in ("rgba", "alpha"):
        pngs = sorted((folder / layer).glob("*.png"))
        assert len(pngs) == FRAMES, (folder, layer, len(pngs))
        with Image.open(pngs[-1]) as image:
            assert image.size == SIZE, (folder, image.size)
    assert (folder / "background" / "background.mp4").stat().st_size > 0


def visible_folders(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")}


def test_batch_runs_the_good_clips_reports_the_bad_skips_finished_ones_and_force_redoes_them(batch_dir, tmp_path):
    out = tmp_path / "out"
    first, first_s = batch(batch_dir, out)
    assert first.returncode == 2, first.stderr[-3000:]  # something failed: the broken clip
    assert visible_folders(out) == {f for names in GOOD.values() for f in names}
    for names in GOOD.values():
        for name in names:
            assert_complete(out / name)
    clips = report(out)
    assert {name: c["status"] for name, c in clips.items()} == {
        "beach": "ran", "beach_two": "ran", "draw": "ran", "broken": "refused", "no_mask": "refused",
        "black_mask": "failed"}
    assert BROKEN_REASON in clips["broken"]["reason"] and "input_video.mp4" in clips["broken"]["reason"]
    assert clips["no_mask"]["reason"].startswith("no mask")
    assert clips["black_mask"]["reason"].startswith(  # failed in the graph; the next clip still ran
        "OmnimatteConditioning failed: OmnimatteConditioning: the object mask is empty in every frame")
    assert "the object mask is black in every sampled frame" in " ".join(clips["black_mask"]["warnings"])
    assert clips["beach_two"]["objects"] == 2 and clips["beach_two"]["folders"] == GOOD["beach_two"]
    assert (clips["draw"]["frames"], clips["draw"]["width"], clips["draw"]["height"]) == (FRAMES, *SIZE)
    assert all(clips[name]["seconds"] > 0 for name in GOOD)
    plan = first.stderr[first.stderr.index("batch "):first.stderr.index("[1/4]")]
    assert "will not run: Input video" in plan and "will run" in plan  # the plan came before any clip ran
    table = first.stdout
    assert "broken" in table and BROKEN_REASON in table and "exit code 2" in table, table
    log = (out / "omnimatte-run.log").read_text()
    assert log.count("running Load Diffusion Model") == 1 and log.count("running Load VAE") == 1  # loaded once
    assert log.count("running Save layers") == 3 and "[4/4] clip draw: ran" in log

    written = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    shutil.rmtree(batch_dir / "black_mask")  # (a failed clip is not done: the next run would try it again)
    second, second_s = batch(batch_dir, out)
    assert second.returncode == 2, second.stderr[-3000:]
    clips = report(out)
    assert [clips[name]["status"] for name in GOOD] == ["already done"] * 3
    assert clips["broken"]["status"] == "refused"
    assert json.loads((out / "batch_report.json").read_text())["models_loaded"] is False
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == written  # nothing redone
    print(f"first run {first_s:.1f} s, second run (finished clips skipped) {second_s:.1f} s")

    # a run killed between the renames of a several-object clip leaves some of its folders: the clip is redone
    # into the same names, never beside them as -2
    shutil.rmtree(out / "beach_two-mask_01")
    third, _ = batch(batch_dir, out)
    assert third.returncode == 2, third.stderr[-3000:]
    assert report(out)["beach_two"]["status"] == "ran" and report(out)["beach"]["status"] == "already done"
    assert visible_folders(out) == {f for names in GOOD.values() for f in names}
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.is_dir()]
    for name in GOOD["beach_two"]:
        assert_complete(out / name)

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    forced, _ = batch(batch_dir, out, "--force")  # redone in place, the old folders replaced only on success
    assert forced.returncode == 2, forced.stderr[-3000:]
    assert [report(out)[name]["status"] for name in GOOD] == ["ran"] * 3
    assert visible_folders(out) == {f for names in GOOD.values() for f in names}
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.is_dir()]
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    assert after.keys() == before.keys() and all(after[p] != before[p] for p in after)


def test_a_batch_killed_mid_clip_completes_on_restart_with_no_half_folders(batch_dir, tmp_path):
    out = tmp_path / "out"
    command = ["bash", str(RUN_SH), "--batch", str(batch_dir), "--out", str(out), *TOY_FAST]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stage = wait_for_stage(out, ("beach_two", "draw"), process)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    caught = "beach_two" if stage.name.startswith(".beach_two") else "draw"
    assert stage.exists() and not visible_folders(out) & set(GOOD[caught])  # killed while writing: hidden only
    for name in visible_folders(out):
        assert_complete(out / name)  # whatever is visible is whole

    restarted, _ = batch(batch_dir, out)
    assert restarted.returncode == 2, restarted.stderr[-3000:]
    statuses = {name: c["status"] for name, c in report(out).items()}
    assert statuses["beach"] == "already done"  # finished before the kill
    assert {statuses["beach_two"], statuses["draw"]} <= {"ran", "already done"} and "ran" in statuses.values()
    assert visible_folders(out) == {f for names in GOOD.values() for f in names}  # no -2, nothing mixed
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and p.is_dir()]  # leftovers removed
    for names in GOOD.values():
        for name in names:
            assert_complete(out / name)


def wait_for_stage(out: Path, clips: tuple[str, ...], process: subprocess.Popen, timeout_s: float = 300) -> Path:
    """The first staging folder of one of ``clips`` that holds a written file (that clip is being written)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        for stage in out.glob(".*.partial-*") if out.is_dir() else []:
            if stage.name[1:].startswith(clips) and any(p.is_file() for p in stage.rglob("*")):
                return stage
        time.sleep(0.005)
    raise AssertionError(f"no clip was caught being written (exit {process.poll()}):\n"
                         f"{process.stderr.read()[-3000:] if process.poll() is not None else ''}")


def test_a_live_workers_staging_folder_is_not_called_a_leftover(tmp_path):
    """Two batch workers write into the same OUT: neither may call the other's live staging folder what a killed
    run left behind; a dead process's still is."""
    from omnimatte_core import staging

    live = subprocess.Popen(["sleep", "60"])
    dead = subprocess.Popen(["true"])
    dead.wait()
    try:
        for name, pid in (("a-mask_00", live.pid), ("b-mask_00", dead.pid), ("c-mask_00", os.getpid())):
            (tmp_path / f".{name}{staging.PARTIAL_MARK}{pid}").mkdir()
        assert staging.leftovers(tmp_path) == [tmp_path / f".b-mask_00{staging.PARTIAL_MARK}{dead.pid}"]
    finally:
        live.kill()
        live.wait()


def test_clip_folders_are_read_in_the_example_layout(tmp_path):
    """Which file is the video, which are masks (front first) and which is kept; what makes a folder refused."""
    from omnimatte_run.batch_clips import discover

    layout = {"a": ["input_video.mp4", "mask_01.mp4", "mask_00.mp4", "keep_mask.mp4", "prompt.json"],
              "b": ["masked_dance.mov", "mask.mp4"], "c": ["one.mp4", "two.mp4", "mask_00.mp4"],
              "d": ["input_video.mp4", "mask_00.mp4", "keep_mask_1.mp4", "keep_mask_2.mp4"], "e": ["notes.txt"]}
    for folder, names in layout.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
    clips = {c.name: c for c in discover(tmp_path)}
    assert sorted(clips) == ["a", "b", "c", "d"]  # e holds no video: not a clip
    assert [m.name for m in clips["a"].masks] == ["mask_00.mp4", "mask_01.mp4"]
    assert (clips["a"].video.name, clips["a"].keep_mask.name, clips["a"].status) == ("input_video.mp4",
                                                                                     "keep_mask.mp4", "to run")
    assert (clips["b"].video.name, [m.name for m in clips["b"].masks]) == ("masked_dance.mov", ["mask.mp4"])
    assert clips["c"].status == "refused" and clips["c"].reason.startswith("2 videos (one.mp4, two.mp4)")
    assert clips["d"].status == "refused" and "merge them into one keep_mask.mp4" in clips["d"].reason
