"""The pack as ComfyUI-Manager installs it: the Comfy Registry's archive, unpacked into a second
ComfyUI's fresh ``custom_nodes/``, runs the toy demo with nothing else.

The archive is built by comfy-cli's rules (tests/harness/registry_archive.py) and, where comfy-cli is
installed, compared with its own ``comfy node pack`` and checked by ``comfy node validate``. Checks
that need the network are not run here: uploading (``comfy node publish`` validates the token and
the publisher with the registry), and the registry fetching the Icon/Banner URLs, which point at
``main`` on GitHub.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from harness import registry_archive
from omnimatte_host.comfy_host import PACK_DIR

PYPROJECT = tomllib.loads((PACK_DIR / "pyproject.toml").read_text())
COMFY_CLI = Path(sys.executable).parent / "comfy"  # console script of the `comfy-cli` package
NO_COMFY_CLI = ("comfy-cli is not installed in this environment (it is not in requirements-dev.txt, whose "
                "hash names the venv): `$OMNIMATTE_PY -m pip install comfy-cli` to run this check")
PACK_ID = PYPROJECT["project"]["name"]  # Manager unpacks a registry node into custom_nodes/<its id>
NEVER_SHIPPED = ("tests/", ".ci/", ".github/", "benchmarks/results/", "omnimatte-out/")
NEVER_SHIPPED_SUFFIXES = (".pyc", ".mp4", ".mov", ".webm", ".ckpt", ".pt", ".pth")
NEEDED = ("__init__.py", "LICENSE", "README.md", "pyproject.toml", "requirements.txt",
          "requirements-dev.txt",  # scripts/env.sh hashes it into the venv's name: the main job needs it
          "scripts/run.sh", "scripts/env.sh", "omnimatte_run/__main__.py", "omnimatte_run/run_workflow.py",
          "omnimatte_run/graph_run.py", "omnimatte_run/toy_demo.py", "omnimatte_host/comfy_host.py",
          "omnimatte_eval/toy_eval.py", "omnimatte_eval/sheets.py", "omnimatte_workflows/toy_graph.py",
          "toy_world/manifest.json", "workflows/toy_world_demo.json", "docs/icon.png", "docs/banner.png")
HOST_STATE = ("custom_nodes", "models", "input", "output", "temp", "user")  # fresh in the second install
RAW_MAIN = "https://raw.githubusercontent.com/easy-omnimatte/easy-omnimatte/main/"
REGISTRY_OS = ("Microsoft", "POSIX", "MacOS", "OS Independent")  # comfy-cli's config_parser vocabulary
REGISTRY_ACCELERATORS = {"GPU :: NVIDIA CUDA", "GPU :: AMD ROCm", "GPU :: Intel Arc", "NPU :: Huawei Ascend",
                         "GPU :: Apple Metal"}
REGISTRY_VERSION = re.compile(r"^(?:(==|>=|<=|!=|~=|>|<|<>|=)\s*)?(\d+\.\d+\.\d+(?:-[a-zA-Z0-9]+)?)?$")
TOY_WORLD_MIN_COMFYUI = (0, 33, 0)  # nodes/model_folders.host_reads_vae_width: the toy VAE's width
DEMO_FRAMES = 17


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[Path, list[str]]:
    zip_path = tmp_path_factory.mktemp("registry") / "node.zip"
    return zip_path, registry_archive.build(PACK_DIR, zip_path)


def _comfy_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DO_NOT_TRACK": "1"}  # no telemetry, no consent prompt
    return subprocess.run([str(COMFY_CLI), "--skip-prompt", "--no-enable-telemetry", *args], cwd=cwd, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_archive_holds_the_toy_world_help_pages_and_workflows_and_no_tests(archive):
    _, names = archive
    tracked = subprocess.run(["git", "-C", str(PACK_DIR), "ls-files", "toy_world", "web/docs", "workflows"],
                             check=True, capture_output=True, text=True).stdout.split()
    toy_models = [n for n in tracked if n.startswith("toy_world/") and n.endswith(".safetensors")]
    assert len(toy_models) >= 6 and any(n.startswith("toy_world/demo/") for n in toy_models), toy_models
    missing = [n for n in [*tracked, *NEEDED] if n not in names]
    assert not missing, f"the registry archive lacks {missing}"
    assert any(n.startswith("web/docs/") and n.endswith(".md") for n in names)
    shipped_by_mistake = [n for n in names if n.startswith(NEVER_SHIPPED) or "__pycache__/" in n
                          or n.endswith(NEVER_SHIPPED_SUFFIXES)]
    assert not shipped_by_mistake, shipped_by_mistake


def test_every_image_the_docs_show_is_in_the_archive(archive):
    """The help pages, README and docs show images by relative path: none may be left behind by .comfyignore."""
    _, names = archive
    pages = [n for n in names if n.endswith(".md")]
    wanted = set()
    for page in pages:
        for target in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", (PACK_DIR / page).read_text()):
            if "://" not in target:
                wanted.add(os.path.normpath(os.path.join(os.path.dirname(page), target)).replace(os.sep, "/"))
    assert wanted, "no images found in the pages: the pattern is stale"
    assert not wanted - set(names), f"pages show images the archive lacks: {sorted(wanted - set(names))}"


def test_comfy_cli_packs_the_same_files(archive, tmp_path):
    if not COMFY_CLI.is_file():
        pytest.skip(NO_COMFY_CLI)
    _, names = archive
    copy = registry_archive.tracked_copy(PACK_DIR, tmp_path / PACK_ID)
    done = _comfy_cli("node", "pack", cwd=copy)
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(copy / "node.zip") as packed:
        theirs = sorted(packed.namelist())
    assert theirs == sorted(names), (f"only comfy-cli: {sorted(set(theirs) - set(names))}; "
                                     f"only ours: {sorted(set(names) - set(theirs))}")


def test_comfy_node_validate_passes_without_warnings():
    if not COMFY_CLI.is_file():
        pytest.skip(NO_COMFY_CLI)
    done = _comfy_cli("node", "validate", cwd=PACK_DIR)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Warning" not in output and "Security warnings" not in output, output


def test_pyproject_says_what_the_registry_reads():
    """The offline part of the registry's checks (comfy-cli only warns and drops a field it cannot read)."""
    project, comfy = PYPROJECT["project"], PYPROJECT["tool"]["comfy"]
    os_values = [c.removeprefix("Operating System :: ") for c in project["classifiers"]
                 if c.startswith("Operating System :: ")]
    accelerators = [c.removeprefix("Environment :: ") for c in project["classifiers"]
                    if c.startswith("Environment ::")]
    assert os_values and all(v.startswith(REGISTRY_OS) for v in os_values), os_values
    assert accelerators and set(accelerators) <= REGISTRY_ACCELERATORS, accelerators
    assert set(project["urls"]) >= {"Repository", "Documentation", "Issues"}  # the keys comfy-cli reads
    requires = comfy["requires-comfyui"]
    assert all(REGISTRY_VERSION.match(part.strip()) for part in requires.split(",")), requires
    lowest = tuple(int(x) for x in re.search(r">=\s*(\d+)\.(\d+)\.(\d+)", requires).groups())
    assert lowest >= TOY_WORLD_MIN_COMFYUI, "the archive ships the toy world, which needs ComfyUI 0.33+"
    for key in ("Icon", "Banner"):
        assert comfy[key].startswith(RAW_MAIN), comfy[key]
        assert (PACK_DIR / comfy[key].removeprefix(RAW_MAIN)).is_file(), comfy[key]
    with Image.open(PACK_DIR / comfy["Icon"].removeprefix(RAW_MAIN)) as icon:
        assert icon.format == "PNG" and icon.width == icon.height <= 400, icon.size
    with Image.open(PACK_DIR / comfy["Banner"].removeprefix(RAW_MAIN)) as banner:
        assert banner.format == "PNG" and banner.width >= 3 * banner.height, banner.size
    publish = (PACK_DIR / ".github" / "workflows" / "publish.yml").read_text()
    assert "uses: Comfy-Org/publish-node-action@v1" in publish and "secrets.REGISTRY_ACCESS_TOKEN" in publish


def _second_install(host: Path, root: Path) -> Path:
    """A second ComfyUI install location: the host's code (top-level modules copied, so ComfyUI's own
    paths resolve here; folders linked), with fresh custom_nodes/, models/, input/, output/, temp/, user/."""
    root.mkdir()
    for entry in host.iterdir():
        if entry.name.startswith(".") or entry.name in HOST_STATE:
            continue
        if entry.is_file() and entry.suffix == ".py":
            shutil.copy2(entry, root / entry.name)
        else:
            (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for name in HOST_STATE:
        (root / name).mkdir()
    if (host / "models" / "configs").is_dir():  # shipped with ComfyUI, not downloaded
        (root / "models" / "configs").symlink_to(host / "models" / "configs", target_is_directory=True)
    return root


def _same_environment_as_this_run(pack: Path, host: Path) -> bool:
    """run.sh names its venv after the requirements files: with identical files and this run started by
    scripts/test.sh it reuses this venv (a different name would build a new 6 GB one)."""
    same = all((pack / n).read_bytes() == (PACK_DIR / n).read_bytes()
               for n in ("requirements.txt", "requirements-dev.txt", "scripts/env.sh"))
    return same and os.environ.get("OMNIMATTE_PY") == sys.executable and (Path(sys.prefix) / ".complete").is_file()


def test_toy_demo_runs_from_a_pack_installed_from_the_archive_alone(archive, comfy_path, tmp_path):
    """The README's main job, from the unpacked archive in a second ComfyUI: the host is found as the
    folder above custom_nodes/, and the pack, its toy models and demo clip come from the archive."""
    zip_path, _ = archive
    second = _second_install(comfy_path, tmp_path / "ComfyUI")
    pack = second / "custom_nodes" / PACK_ID
    with zipfile.ZipFile(zip_path) as packed:
        packed.extractall(pack)
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}  # found from custom_nodes/, as installed
    env["OMNIMATTE_CALLER_DIR"] = str(tmp_path)
    out = tmp_path / "layers"
    if _same_environment_as_this_run(pack, comfy_path):
        command = ["bash", str(pack / "scripts" / "run.sh"), "--out", str(out), "--json"]
    else:  # not started by scripts/test.sh: the same runner in this interpreter
        command = [sys.executable, "-m", "omnimatte_run", "--out", str(out), "--json"]
    done = subprocess.run(command, cwd=pack, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "creating the environment" not in done.stderr
    folder = out / "toy_shadow-object"
    for layer in ("background", "alpha", "foreground", "rgba"):
        assert len(list((folder / layer).glob("*.png"))) == DEMO_FRAMES, layer
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["toy_models"] is True, metrics
    log = (out / "omnimatte-run.log").read_text()
    assert str(PACK_DIR) not in log, "the run reached into the checkout"
    assert str(comfy_path) not in log, "the run used the first ComfyUI, not the one the pack is installed in"
    result = json.loads(done.stdout[done.stdout.index("{"):])
    assert result["folder"] == str(folder)
