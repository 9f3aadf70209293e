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
