"""A ComfyUI older than ``requires-comfyui`` (issue 26, item 5): the runner and the test suite each stop at
once with one line that names the version found, the version needed and the fix, instead of failing later
on missing toy files or unknown core nodes. The host here is this machine's ComfyUI copied with its
version file saying 0.3.64 (the release the README last tested before the toy world)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omnimatte_host import comfy_host

PACK_DIR = comfy_host.PACK_DIR
OLD = "0.3.64"


@pytest.fixture(scope="module")
def old_host(tmp_path_factory) -> Path:
    """This ComfyUI's main.py and comfy/ (linked, not copied) with a version file saying ``OLD``."""
    real, host = comfy_host.find_comfyui(), tmp_path_factory.mktemp("comfyui_old")
    for name in ("main.py", "comfy"):
        (host / name).symlink_to(real / name)
    (host / "comfyui_version.py").write_text(f'__version__ = "{OLD}"\n')
    return host


def old_host_env(host: Path) -> dict[str, str]:
    return {**os.environ, "COMFYUI_PATH": str(host)}


def test_the_supported_version_is_the_registrys():
    assert comfy_host.required_comfyui() == "0.33.0"
    assert comfy_host.version_problem(comfy_host.find_comfyui()) is None  # the host the suite runs on
    readme = (PACK_DIR / "README.md").read_text()
    assert f"Requires ComfyUI ≥ {comfy_host.required_comfyui()}" in readme


def test_the_runner_refuses_an_old_host_in_one_line(old_host, tmp_path):
    demo = [sys.executable, "-m", "omnimatte_run", "--out", str(tmp_path / "out")]  # the toy-world demo
    done = subprocess.run(demo, cwd=PACK_DIR, env=old_host_env(old_host), capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr[-2000:]
    message = done.stderr + done.stdout
    assert f"ComfyUI {OLD} at {old_host}" in message and ">= 0.33.0" in message and "COMFYUI_PATH" in message
    assert "missing model files" not in message and "Traceback" not in message


def test_the_test_suite_stops_on_an_old_host_with_the_reason(old_host):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--co",
                           "tests/test_structure.py"], cwd=PACK_DIR, env=old_host_env(old_host),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"ComfyUI {OLD} at {old_host} is older than EasyOmnimatte supports" in done.stdout + done.stderr


@pytest.mark.parametrize("version, too_old", [("0.3.64", True), ("0.32.9", True), ("0.33.0", False),
                                              ("0.40.1", False), ("unknown", False)])
def test_version_problem_compares_versions_not_text(tmp_path, version, too_old):
    (tmp_path / "comfyui_version.py").write_text(f'__version__ = "{version}"\n')
    assert (comfy_host.version_problem(tmp_path) is not None) == too_old


def test_a_host_without_a_version_file_is_not_refused(tmp_path):
    shutil.rmtree(tmp_path)
    tmp_path.mkdir()
    assert comfy_host.comfyui_version(tmp_path) == "unknown" and comfy_host.version_problem(tmp_path) is None
