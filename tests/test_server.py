"""The real ComfyUI server starts with the pack loaded and lists every node it registers."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.server


def _registered_node_ids(pack) -> list[str]:
    extension = asyncio.run(pack.comfy_entrypoint())
    return [cls.GET_SCHEMA().node_id for cls in asyncio.run(extension.get_node_list())]


def test_server_loads_pack_without_import_error(comfy_server, pack):
    log = comfy_server.log_text()
    assert "Cannot import" not in log and "IMPORT FAILED" not in log, comfy_server.log_tail()
    info = comfy_server.get_json("/object_info")
    node_ids = _registered_node_ids(pack)
    assert node_ids, "the pack registers no node"
    missing = [n for n in node_ids if n not in info]
    assert not missing, f"nodes missing from /object_info: {missing}"
    for node_id in node_ids:
        assert info[node_id]["category"].startswith("EasyOmnimatte")
        assert info[node_id]["python_module"].startswith("custom_nodes.")


EXPECTED_WIDGETS = {  # node → input → (default, min, max)
    "BranchWanSampler": {"tau": (0.5, 0.0, 1.0), "steps": (50, 1, 1000), "cfg": (1.0, 0.0, 30.0),
                         "seed": (43, 0, 0xFFFFFFFFFFFFFFFF)},
    "OmnimatteConditioning": {"width": (832, 16, 2048), "height": (480, 16, 2048),
                              "mask_threshold": (0.5, 0.01, 1.0), "dilation": (-1, -1, 256)},
    "LoadOmnimatteExperts": {"effect_strength": (1.0, 0.0, 2.0), "quality_strength": (1.0, 0.0, 2.0)},
    "RecoverForeground": {"epsilon": (1e-3, 1e-6, 0.1)},
    "CompositeLayers": {"alpha_gain": (1.0, 0.0, 4.0)},
}


def test_object_info_lists_inputs_defaults_ranges_and_tooltips(comfy_server, pack):
    info = comfy_server.get_json("/object_info")
    for node_id in _registered_node_ids(pack):
        node = info[node_id]
        inputs = {**node["input"].get("required", {}), **node["input"].get("optional", {})}
        assert node["description"], node_id
        for name, (kind, *options) in inputs.items():
            assert options and options[0].get("tooltip"), f"{node_id}.{name} has no tooltip in /object_info"
        for name, (default, low, high) in EXPECTED_WIDGETS.get(node_id, {}).items():
            spec = inputs[name][1]
            assert (spec["default"], spec["min"], spec["max"]) == (default, low, high), f"{node_id}.{name}: {spec}"
    sampler = info["BranchWanSampler"]["input"]["required"]
    assert sampler["experts"][0] == "OMNIMATTE_EXPERTS"
    assert info["LoadOmnimatteExperts"]["output"] == ["OMNIMATTE_EXPERTS"]
    assert "euler" in sampler["sampler_name"][1]["options"] and "simple" in sampler["scheduler"][1]["options"]
    assert sampler["seed"][1]["control_after_generate"] is True
    assert "lower = crisper matte" in sampler["tau"][1]["tooltip"].lower()
    experts = info["LoadOmnimatteExperts"]["input"]["required"]
    assert experts["effect_expert"][1]["options"][0] == "none"
    cond = info["OmnimatteConditioning"]["input"]
    assert set(cond["optional"]) == {"clip_vision_output", "keep_mask", "object_mask", "objects"}
    assert cond["required"]["width"][1]["step"] == 16 and cond["optional"]["objects"][0] == "OMNIMATTE_OBJECTS"
    assert info["OmnimatteDecode"]["output"] == ["IMAGE", "MASK", "OMNIMATTE_LAYERS"]
    assert info["BranchWanSampler"]["input"]["optional"]["pairs"][1]["options"] == ["auto", "batched", "sequential"]
