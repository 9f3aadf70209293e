"""benchmarks.gpu_check (issue 27): its CPU dry run, a failing stage recorded, the device's PyAV stand-in."""

from __future__ import annotations

import json
import subprocess
import sys
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
