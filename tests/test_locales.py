"""The pack's translations (``locales/<lang>/nodeDefs.json``) cover every node, input and output it defines.

The frontend reads custom nodes' ``nodeDefs`` as ``{node id: {display_name, description, inputs: {input id:
{name, tooltip}}, outputs: {index: {name, tooltip}}}}`` (ComfyUI's ``/i18n`` merges them per language); a node
or input added without a translation shows in English among translated ones, and a key for a renamed input
is dead. ``test_frontend_templates.py`` switches the real page to Chinese.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from omnimatte_host.comfy_host import PACK_DIR

LANGUAGES = sorted(p.name for p in (PACK_DIR / "locales").iterdir() if p.is_dir())
CJK = re.compile(r"[\u4e00-\u9fff]")
WRITTEN_IN = {"zh": CJK}  # a language → text every translated display name must contain


@pytest.fixture(scope="module")
def node_infos(pack) -> dict[str, dict]:
    """node id → the pack's /object_info entry for it, as the V3 API writes it."""
    extension = asyncio.run(pack.comfy_entrypoint())
    infos = [cls.GET_NODE_INFO_V1() for cls in asyncio.run(extension.get_node_list())]
    return {info["name"]: info for info in infos}


def _inputs(info: dict) -> dict[str, dict]:
    """input id → its options (tooltip among them)."""
    return {name: (spec[1] if len(spec) > 1 else {}) for group in ("required", "optional")
            for name, spec in info["input"].get(group, {}).items()}


def _load(language: str) -> dict:
    return json.loads((PACK_DIR / "locales" / language / "nodeDefs.json").read_text(encoding="utf-8"))


def test_there_is_a_chinese_translation():
    assert "zh" in LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_node_input_and_output_is_translated_and_nothing_else(node_infos, language):
    defs = _load(language)
    assert len(node_infos) >= 15
    assert sorted(defs) == sorted(node_infos), "translated nodes differ from the pack's nodes"
    script = WRITTEN_IN.get(language)
    for node_id, info in node_infos.items():
        entry = defs[node_id]
        assert entry["display_name"].strip() and entry["display_name"] != info["display_name"], node_id
        assert not script or script.search(entry["display_name"]), f"{node_id}: {entry['display_name']!r}"
        assert bool(entry.get("description")) == bool(info.get("description")), f"{node_id}: description"
        inputs = _inputs(info)
        assert sorted(entry["inputs"]) == sorted(inputs), f"{node_id}: inputs differ"
        for name, options in inputs.items():
            translated = entry["inputs"][name]
            assert translated["name"].strip(), f"{node_id}.{name} has no translated name"
            if options.get("tooltip"):
                assert translated.get("tooltip", "").strip(), f"{node_id}.{name} has no translated tooltip"
        tips = info.get("output_tooltips") or []
        outputs = {str(i): tips[i] if i < len(tips) else None for i in range(len(info["output"]))}
        assert sorted(entry["outputs"]) == sorted(outputs), f"{node_id}: outputs differ"
        for index, tip in outputs.items():
            assert entry["outputs"][index]["name"].strip(), f"{node_id} output {index}"
            if tip:
                assert entry["outputs"][index].get("tooltip", "").strip(), f"{node_id} output {index} tooltip"
