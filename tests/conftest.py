"""Session-wide harness: the real ComfyUI host, tiny models, graph runner and server."""

from __future__ import annotations

import logging
from pathlib import Path

import sys

import pytest

sys.path.append(str(Path(__file__).resolve().parents[1]))  # the pack root, last: its packages
from omnimatte_host import comfy_host as host  # noqa: E402

COMFY_PATH = host.find_comfyui()


def pytest_configure(config):
    config.addinivalue_line("markers", "toy_world: needs the embedded toy world (skipped only on a ComfyUI "
                                       "version known too old for it, failed if it cannot load)")
    if COMFY_PATH is None:
        pytest.exit(host.NO_HOST_MESSAGE, returncode=3)
    too_old = host.version_problem(COMFY_PATH)
    if too_old:  # one reason for the whole suite, before anything imports that host
        pytest.exit(too_old, returncode=3)
    host.import_comfy(COMFY_PATH)


def pytest_runtest_setup(item):
    if item.get_closest_marker("toy_world") is not None:
        from harness.toy_host import require_toy_world

        require_toy_world(COMFY_PATH)


def pytest_report_header(config):
    if COMFY_PATH is not None:
        import torch

        return (f"ComfyUI {host.comfyui_version(COMFY_PATH)} at {COMFY_PATH}; torch {torch.__version__}; "
                f"threads {torch.get_num_threads()}")


@pytest.fixture
def both_cores():
    """Torch on every core for one long single-process test (tests/harness/cores.py)."""
    from harness.cores import every_core

    with every_core() as cores:
        yield cores


@pytest.fixture(scope="session")
def comfy_path() -> Path:
    return COMFY_PATH


@pytest.fixture(scope="session")
def comfy_dirs(tmp_path_factory) -> Path:
    """Point ComfyUI's model, input, output and temp folders at a session temp dir."""
    import folder_paths

    root = tmp_path_factory.mktemp("comfy")
    for sub in ("input", "output", "temp", "user"):
        (root / sub).mkdir()
    folder_paths.set_input_directory(str(root / "input"))
    folder_paths.set_output_directory(str(root / "output"))
    folder_paths.set_temp_directory(str(root / "temp"))
    for key in ("diffusion_models", "vae", "clip_vision", "text_encoders", "omnimatte", "omnimatte_text_embeds",
                "loras"):
        (root / "models" / key).mkdir(parents=True)
    return root


@pytest.fixture(scope="session")
def pack(comfy_dirs):
    """The pack as ComfyUI loads it (core extra nodes too), plus the test capture node."""
    from harness.executor import load_nodes
    import folder_paths

    module = load_nodes(host.PACK_DIR)
    for key in ("diffusion_models", "vae", "clip_vision", "text_encoders", "omnimatte", "omnimatte_text_embeds",
                "loras"):
        folder_paths.add_model_folder_path(key, str(comfy_dirs / "models" / key), is_default=True)
    return module


@pytest.fixture(scope="session")
def core(pack):
    """``omnimatte_core`` of the loaded pack, with its submodules imported."""
    import importlib
    import pkgutil

    package = importlib.import_module("omnimatte_core")  # the one name the pack imports it under
    for info in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{info.name}")
    return package


@pytest.fixture(scope="session")
def runner(pack):
    from harness.executor import GraphRunner

    return GraphRunner()


@pytest.fixture(scope="session")
def tiny_files(comfy_dirs) -> dict[str, Path]:
    """Seeded tiny model files in the session's model folders (names as a user would see them)."""
    from harness.casper_layouts import CASPER_1_3B, write_lora
    from training import random_models as tm

    models = comfy_dirs / "models"
    spec = tm.TinyWanSpec()
    tiny_layout = CASPER_1_3B.reduced(spec.num_layers, dim=spec.dim, ffn_dim=spec.ffn_dim)  # the 14B LoRA's layout
    return {
        "i2v": tm.write_wan(models / "diffusion_models" / "tiny_wan_i2v.safetensors", tm.TinyWanSpec(i2v=True), seed=1),
        "t2v": tm.write_wan(models / "diffusion_models" / "tiny_wan_t2v.safetensors", tm.TinyWanSpec(i2v=False), seed=2),
        "vae": tm.write_vae(models / "vae" / "tiny_wan_vae.safetensors", seed=3),
        "lora": write_lora(models / "loras" / "tiny_wan_casper_lora.safetensors", tiny_layout, rank=4, seed=4),
    }


@pytest.fixture(scope="session")
def tiny_i2v(tiny_files):
    from training import random_models as tm

    return tm.load_wan(tiny_files["i2v"])


@pytest.fixture(scope="session")
def tiny_t2v(tiny_files):
    from training import random_models as tm

    return tm.load_wan(tiny_files["t2v"])


@pytest.fixture(scope="session")
def tiny_vae(tiny_files):
    from training import random_models as tm

    return tm.load_vae(tiny_files["vae"])


@pytest.fixture(scope="session")
def text_embeds_file(core, comfy_dirs) -> str:
    """A cached CONDITIONING shaped like umt5's, standing in for the text encoder (DESIGN §2)."""
    from training import random_models as tm

    name = "tiny_background_prompt.safetensors"
    core.text_embeds.save_conditioning(tm.text_conditioning(seed=21), comfy_dirs / "models" / "omnimatte_text_embeds" / name)
    return name


@pytest.fixture(scope="session")
def clip_vision_file() -> Path:
    """A random CLIP-H vision file, made once and cached outside the checkout (~1.3 GB)."""
    from training import random_models as tm

    return tm.clip_vision_h_file(seed=0)


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory, comfy_dirs, tiny_files, expert_files, text_embeds_file, clip_vision_file):
    """The real ComfyUI server with this pack in its custom_nodes and the tiny models found through an
    extra_model_paths.yaml; stopped by PID at the end."""
    from omnimatte_host.comfy_server import ComfyServer

    base = tmp_path_factory.mktemp("server")
    models = comfy_dirs / "models"
    folders = {k: str(models / k) for k in ("diffusion_models", "vae", "omnimatte", "omnimatte_text_embeds", "loras")}
    folders["clip_vision"] = str(clip_vision_file.parent)
    yaml_path = base / "extra_model_paths.yaml"
    yaml_path.write_text("omnimatte_tests:\n" + "".join(f"  {k}: {v}\n" for k, v in folders.items()))
    server = ComfyServer(COMFY_PATH, host.PACK_DIR, base, extra_args=("--extra-model-paths-config", str(yaml_path)))
    try:
        server.start()
        yield server
    finally:
        server.stop()
        logging.getLogger(__name__).info("ComfyUI server log: %s", server.log_path)


@pytest.fixture(scope="session")
def expert_files(core, tiny_files, comfy_dirs) -> dict[str, str]:
    """Seeded random experts for the tiny Wan (dim 128, 4 blocks, in_dim 36) in models/omnimatte.

    Names are as LoadOmnimatteExperts lists them; 'other_size' was made for a dim-256 model.
    """
    base = core.experts.BaseSignature(dim=128, num_layers=4, in_dim=36)
    other = core.experts.BaseSignature(dim=256, num_layers=4, in_dim=36)
    make = core.experts.zero_lora_expert
    experts = {
        "effect": make("effect", base, rank=8, blocks=[2, 3], seed=11, init_std=0.5),
        "quality": make("quality", base, rank=4, seed=12, init_std=0.5),
        "other_size": make("effect", other, rank=4, blocks=[3], seed=13, init_std=0.5),
    }
    folder = comfy_dirs / "models" / "omnimatte"
    names = {}
    for key, expert in experts.items():
        names[key] = f"tiny_{key}.safetensors"
        core.expert_file.save_expert(expert, folder / names[key])
    return names
