"""A contributor's fresh machine (issue 26, item 4): no ~/ComfyUI and no COMFYUI_PATH, and the README's test
command sets up the pinned ComfyUI itself, from a local mirror named by OMNIMATTE_COMFYUI_GIT."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from omnimatte_host import comfy_host

PACK_DIR = comfy_host.PACK_DIR
TAG = "v0.33.0"
SKIP_IN_MIRROR = shutil.ignore_patterns("user", "temp", "__pycache__", "*.pyc", ".git")  # not in a release


def mirror_of_this_host(path: Path) -> Path:
    """A git repository holding this machine's ComfyUI source, tagged as the pinned release."""
    shutil.copytree(comfy_host.find_comfyui(), path, ignore=SKIP_IN_MIRROR)
    (path / "custom_nodes" / "example_node.py.example").touch()  # a release holds this folder with this file
    for command in (["init", "-q"], ["add", "-A", "-f"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"],
                    ["tag", TAG]):
        subprocess.run(["git", *command], cwd=path, check=True, capture_output=True)
    return path


def fresh_machine_env(home: Path, mirror: str) -> dict[str, str]:
    """This machine's environment as a newcomer's: another HOME, no COMFYUI_PATH; the test venv is reused."""
    env = {k: v for k, v in os.environ.items() if k not in ("COMFYUI_PATH", "OMNIMATTE_PY")}
    venv_root = Path(sys.executable).parents[2]  # <root>/<key>/bin/python: the same key is found again
    env.update(HOME=str(home), OMNIMATTE_COMFYUI_GIT=mirror, OMNIMATTE_VENV_ROOT=str(venv_root),
               OMNIMATTE_BASE_PYTHON=sys._base_executable)
    env.pop("OMNIMATTE_COMFYUI_CACHE", None)
    return env


def test_the_test_command_sets_up_a_pinned_comfyui_on_a_fresh_machine(tmp_path):
    mirror = mirror_of_this_host(tmp_path / "mirror")
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(["bash", str(PACK_DIR / "scripts" / "test.sh"), "-q", "-p", "no:cacheprovider",
                           "tests/test_pack_basics.py"], cwd=PACK_DIR, env=fresh_machine_env(home, f"file://{mirror}"),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    pinned = home / ".cache" / "easy-omnimatte" / "comfyui" / TAG
    assert f"setting up ComfyUI {TAG} from file://{mirror}" in done.stderr, done.stderr[-2000:]
    assert f"ComfyUI at {pinned}" in done.stderr and (pinned / "main.py").is_file()
    assert " passed" in done.stdout and " failed" not in done.stdout, done.stdout[-2000:]
    again = subprocess.run(["bash", "-c", f"source {PACK_DIR}/scripts/env.sh && echo $COMFYUI_PATH"],
                           env=fresh_machine_env(home, "file:///nowhere"), capture_output=True, text=True, timeout=120)
    assert again.stdout.strip() == str(pinned) and "setting up" not in again.stderr  # found, not fetched again


def test_where_nothing_can_be_fetched_the_message_says_what_to_do(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(["bash", str(PACK_DIR / "scripts" / "test.sh"), "--co", "-q"], cwd=PACK_DIR,
                          env=fresh_machine_env(home, f"file://{tmp_path / 'no-mirror'}"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "could not fetch ComfyUI" in done.stderr and "export COMFYUI_PATH=" in done.stderr, done.stderr
    assert f"git clone --depth 1 --branch {TAG}" in done.stderr and "OMNIMATTE_COMFYUI_GIT" in done.stderr
    assert not (home / ".cache" / "easy-omnimatte" / "comfyui" / f"{TAG}.partial").exists()
