"""benchmarks.gpu_check (issue 27): its CPU dry run, a failing stage recorded, the budget and timeouts, the
device's PyAV stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_runs_each_stage_on_its_cpu_preset(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--json", "--out", str(out),
                           "--only", "decompose_2_steps", "branch_forward"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and set(report["stages"]) == {"decompose_2_steps", "branch_forward"}
    decompose = report["stages"]["decompose_2_steps"]
    assert "error" not in decompose, decompose
    assert decompose["command"] == "python -m benchmarks.decompose --preset cpu --steps 1 --json"
    assert decompose["result"]["steps"] == 1 and decompose["result"]["total_s"] > 0
    assert report["stages"]["branch_forward"]["result"]["ratio_b"] > 1


def test_a_failing_stage_is_recorded_and_the_next_one_runs():
    broken = gpu_check.Stage("broken", "benchmarks.no_such_module", (), (), 60)
    record = gpu_check.run_stage(broken, dry_run=True)
    assert record["error"].startswith("exit 1") and "No module named" in record["error"]


def test_last_json_object_skips_log_lines():
    text = 'INFO something\n{"a": 1}\nnot json {\n{"b": 2}\ntrailing log'
    assert gpu_check.last_json_object(text) == {"b": 2}
    assert gpu_check.last_json_object("no json here") is None


def test_device_av_stub_imports_and_refuses_use():
    code = ("import av; from av.container import InputContainer; from av.video.reformatter import ColorRange; "
            "av.logging.set_level\n"
            "try:\n    av.open('x.mp4')\nexcept RuntimeError as e:\n    print('refused:', e)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "scripts" / "device" / "av_stub")})
    assert done.returncode == 0, done.stderr
    assert "refused: PyAV is not installed here" in done.stdout


def test_dry_run_of_long_video_and_training_stages(tmp_path):
    """The new stages end to end on their CPU presets: long_video's two lengths in windows, the Effect and
    Quality smokes plainly and the Effect one through torchrun (same seeded files: the same losses)."""
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--dry-run", "--json", "--out", str(out),
                           "--only", "long_video_480x832", "train_smoke", "train_smoke_torchrun"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    stages = json.loads(out.read_text())["stages"]
    assert all("error" not in stage for stage in stages.values()), stages
    long = stages["long_video_480x832"]
    assert long["command"] == "python -m benchmarks.long_video --preset cpu --json"
    video = long["result"]
    assert video["frames"] == [9, 17] and video["window"]["windows"] == {"9": 1, "17": 2}
    assert all(s > 0 for s in video["seconds_per_frame"]) and video["ratios"]["of"] == "17 / 9 frames"
    assert video["ratios"]["seconds"] > 0 and video["vae_stream_fallbacks"] == {}
    runs = stages["train_smoke"]["result"]["runs"]
    assert set(runs) == {"effect", "quality"}
    for run in runs.values():
        assert run["steps"] == 20 and run["expert_written"] and run["step_s"] > 0 and run["peak_rss_mb"] > 0
        assert run["loss_last"] < run["loss_first"]
    torchrun = stages["train_smoke_torchrun"]["result"]["runs"]["torchrun:effect"]
    assert torchrun["command"].startswith("python -m torch.distributed.run --standalone --nproc_per_node=1 -m "
                                          "training.train --role effect")
    assert (torchrun["steps"], torchrun["loss_first"], torchrun["loss_last"]) == \
        (20, runs["effect"]["loss_first"], runs["effect"]["loss_last"])


def test_default_set_fits_eight_minutes():
    default = [s for s in gpu_check.STAGES if s.default]
    assert sum(s.timeout_s for s in default) <= gpu_check.DEFAULT_BUDGET_S == 480
    assert {s.name for s in default} >= {"decompose_4_steps", "long_video_480x832", "train_smoke",
                                         "train_smoke_torchrun"}
    everything = gpu_check.chosen(gpu_check.parse_args(["--all"]))
    assert len(everything) == len(gpu_check.STAGES) > len(default)


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[-1][0] not in "ZX"


def test_budget_kills_a_stage_with_its_children_and_keeps_its_json(tmp_path, monkeypatch):
    pid_file = tmp_path / "child.pid"
    sleepy = gpu_check.Stage("sleepy", "tests.harness.sleepy_stage", (str(pid_file),), (str(pid_file),), 60)
    monkeypatch.setattr(gpu_check, "STAGES", (sleepy, gpu_check.Stage("next", "tests.harness.sleepy_stage",
                                                                      ("x",), ("x",), 60)))
    started = time.perf_counter()
    report = gpu_check.run(gpu_check.parse_args(["--dry-run", "--budget", "4", "--out", str(tmp_path / "r.json")]))
    assert time.perf_counter() - started < 30
    record = report["stages"]["sleepy"]
    assert record["error"] == "ran past its 4 s timeout" and record["result"] == {"partial": True}
    assert report["not_run"] == {"next": "the 4 s budget was spent"} and "next" not in report["stages"]
    pid = int(pid_file.read_text())
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the stage's child outlived the stage's timeout"
