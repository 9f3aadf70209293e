"""Pack-level behaviour inside a real ComfyUI: model folders, help pages, text embeddings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import torch

from training import random_models as tm

PACK_DIR = Path(__file__).resolve().parents[1]


def test_model_folders_are_safetensors_only_and_keep_user_paths(pack, tmp_path):
    import folder_paths

    user_dir = tmp_path / "my_experts"
    user_dir.mkdir()
    folder_paths.add_model_folder_path("omnimatte", str(user_dir))
    pack.register_model_folder()  # registering again must not drop the user's path
    for key in ("omnimatte", "omnimatte_text_embeds"):
        paths, extensions = folder_paths.folder_names_and_paths[key]
        assert extensions == {".safetensors"}
        assert str(Path(folder_paths.models_dir) / key) in paths
    assert str(user_dir) in folder_paths.get_folder_paths("omnimatte")
    (user_dir / "e.safetensors").write_bytes(b"")
    (user_dir / "e.pt").write_bytes(b"")
    folder_paths.filename_list_cache.clear()
    listed = folder_paths.get_filename_list("omnimatte")
    assert "e.safetensors" in listed and "e.pt" not in listed


def test_every_node_has_help_page_tooltips_and_category(pack):
    extension = asyncio.run(pack.comfy_entrypoint())
    for cls in asyncio.run(extension.get_node_list()):
        schema = cls.GET_SCHEMA()
        assert schema.category.startswith("EasyOmnimatte")
        assert (PACK_DIR / "web" / "docs" / f"{schema.node_id}.md").is_file(), schema.node_id
        for item in schema.inputs:
            assert item.tooltip, f"{schema.node_id}.{item.id} has no tooltip"


def _save_graph(name, overwrite=False):
    return {"1": {"class_type": "OmnimatteLoadTextEmbeds", "inputs": {"embeds_name": name}},
            "2": {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["1", 0], "key": "cond"}}}


def test_text_embeds_round_trip_through_the_executor(pack, runner, comfy_dirs):
    import folder_paths

    from harness.executor import GraphInvalid

    cond = tm.text_conditioning(seed=4)
    cond[0][1]["attention_mask"] = torch.ones(1, 16, dtype=torch.int64)
    save = pack.nodes.text_embeds.OmnimatteSaveTextEmbeds
    save.execute(cond, "beach/prompt", False)
    with pytest.raises(ValueError, match="already exists"):
        save.execute(cond, "beach/prompt", False)
    with pytest.raises(ValueError, match="not a usable file name"):
        save.execute(cond, "../escape", False)
    folder_paths.filename_list_cache.clear()

    result = runner.run(_save_graph("beach/prompt.safetensors"))
    assert result.success, result.error_message()
    loaded = result.captured["cond"]
    assert torch.equal(loaded[0][0], cond[0][0])
    assert loaded[0][1]["pooled_output"] is None
    assert torch.equal(loaded[0][1]["attention_mask"], cond[0][1]["attention_mask"])

    # a name not in the folder: ComfyUI's validator refuses it (v0.33); where the host lets it
    # through (v0.3.64), the node itself must refuse it saying where to put the file
    try:
        result = runner.run(_save_graph("missing.safetensors"))
    except GraphInvalid:
        return
    assert not result.success
    assert "OmnimatteLoadTextEmbeds: 'missing.safetensors' is not in" in result.error_message()


def test_pyproject_reads_through_comfyuis_parser_and_matches_requirements(comfy_path):
    from comfy_config import config_parser

    config = config_parser.extract_node_configuration(str(PACK_DIR))
    assert config.project.name == "easy-omnimatte" and "comfyui" not in config.project.name.lower()
    assert [int(p) for p in config.project.version.split(".")] and config.project.version.count(".") == 2
    assert config.tool_comfy.publisher_id and config.tool_comfy.display_name and config.tool_comfy.icon
    assert config.project.supported_comfyui_version.startswith(">=")
    assert config.project.urls.repository
    requirements = [line.split("#")[0].strip() for line in (PACK_DIR / "requirements.txt").read_text().splitlines()]
    requirements = [r for r in requirements if r]
    assert sorted(config.project.dependencies) == sorted(requirements)
    assert not any(r.lower().startswith(("torch", "torchvision", "torchaudio")) for r in requirements)
    ignored = (PACK_DIR / ".comfyignore").read_text().split()
    assert "tests/" in ignored and "*.mp4" in ignored
