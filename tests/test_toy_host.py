"""The toy-world skip rule (tests/harness/toy_host.py): a skip only on a ComfyUI version known too old,
a loud failure on any other host that cannot load the toy world, and every toy-world test file using it."""

from __future__ import annotations

from pathlib import Path

import pytest

PACK_TESTS = Path(__file__).resolve().parent
TOY_TEST_FILES = ("test_toy_world.py", "test_toy_world_parts.py", "test_windows.py", "test_objects.py")


def _host(tmp_path: Path, version: str) -> Path:
    (tmp_path / "comfyui_version.py").write_text(f'__version__ = "{version}"\n')
    return tmp_path


def test_every_toy_world_test_file_uses_the_shared_rule():
    for name in TOY_TEST_FILES:
        text = (PACK_TESTS / name).read_text()
        assert "host_vae_dim" not in text, f"{name} still skips on the host's source text"
        assert "needs_toy_world" in text or "require_toy_world" in text, f"{name} bypasses harness.toy_host"


def test_a_host_known_too_old_skips(tmp_path):
    from harness.toy_host import require_toy_world

    with pytest.raises(pytest.skip.Exception, match="0.3.64"):
        require_toy_world(_host(tmp_path, "0.3.64"))


@pytest.mark.parametrize("version", ["0.33.0", "0.40.1", "unknown"])
def test_any_other_host_that_cannot_load_the_toy_world_fails_loudly(tmp_path, monkeypatch, version):
    from harness import toy_host

    monkeypatch.setattr(toy_host, "toy_vae_load_error", lambda: "a host refactor")
    with pytest.raises(pytest.fail.Exception, match="a host refactor.*Fix:"):
        toy_host.require_toy_world(_host(tmp_path, version))


def test_a_refactored_loader_source_is_no_reason_to_skip(pack, comfy_path, monkeypatch):
    """The old rule read ComfyUI's source text: a host whose source no longer names the key skipped all."""
    from harness import toy_host
    from training import random_models as rm

    monkeypatch.setattr(rm, "host_vae_dim", lambda: 96)
    toy_host.toy_vae_load_error.cache_clear()
    toy_host.require_toy_world(comfy_path)  # this host (v0.33) loads the toy VAE: neither skip nor failure
