"""The workflows in the real ComfyUI frontend: headless Chromium (Debian's, driven by Playwright) opens
the page of a real server, drops each workflow onto the canvas like a user, and checks what the page
made of it; the toy demo is queued from the page and its outputs and live previews are checked.

Needs ``scripts/setup-browser.sh`` (the README's test command runs it when it can); without the
browser or the driver package these tests fail, naming that script.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from harness.frontend_page import FrontendPage, load_json
from omnimatte_workflows import workflow_format as wf
from omnimatte_host.comfy_host import PACK_DIR

log = logging.getLogger(__name__)

BROWSER = Path(os.environ.get("OMNIMATTE_CHROMIUM", "/usr/bin/chromium"))
SETUP_HINT = "run scripts/setup-browser.sh (as root: Debian's chromium + chromium-driver and the pinned playwright)"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-extensions", "--no-first-run"]
VIEWPORT = {"width": 1600, "height": 1000}
# A returning user: no first-run templates browser over the canvas; screenshots without the minimap and
# with titles and widgets drawn at the zoom that fits a whole workflow.
USER_SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False,
                 "LiteGraph.Canvas.MinFontSizeForLOD": 0}  # full detail at any zoom
WORKFLOWS = sorted((PACK_DIR / "workflows").glob("*.json"))
NAMES = [p.stem for p in WORKFLOWS]
TOY_DEMO = "toy_world_demo"
TOY_LAYERS = ("background", "alpha", "foreground", "rgba")
TOY_FRAMES = 17
SCREENSHOT = PACK_DIR / "docs" / "images" / "frontend_toy_demo.png"
RUN_TIMEOUT_S = 300
# Where a workflow's file inputs live on the server (node type, widget) → folder under --base-directory.
# The server gets an empty placeholder (a tiny real clip or image for inputs) for each name the workflows
# use and it does not list, so the page sees no missing model or media and every red node is a real error.
FILE_WIDGETS = {("UNETLoader", "unet_name"): "models/diffusion_models",
                ("CLIPLoader", "clip_name"): "models/text_encoders",
                ("VAELoader", "vae_name"): "models/vae",
                ("CLIPVisionLoader", "clip_name"): "models/clip_vision",
                ("CheckpointLoaderSimple", "ckpt_name"): "models/checkpoints",
                ("LoraLoaderModelOnly", "lora_name"): "models/loras",
                ("LoadOmnimatteExperts", "effect_expert"): "models/omnimatte",
                ("LoadOmnimatteExperts", "quality_expert"): "models/omnimatte",
                ("OmnimatteLoadTextEmbeds", "embeds_name"): "models/omnimatte_text_embeds",
                ("LoadVideo", "file"): "input",
                ("LoadImage", "image"): "input"}

# Inputs the page's graphToPrompt adds that are no input of the node: the frontend's own fault, not
# ui_to_api's. Core LoadVideo's preview widget ('video-preview', its value '') is serialised into the
# prompt once the page has a clip to preview; the server drops inputs a node does not define.
FRONTEND_PROMPT_EXTRAS = {"LoadVideo": {"video-preview"}}

# Listens on the app's own websocket client for the run's events and the binary progress previews.
LISTEN_JS = """() => {
    const seen = window.__omnimatteRun = {executing: [], success: null, error: null, previews: 0, preview_bytes: 0,
                                          preview_nodes: []};
    const api = app.api;
    api.addEventListener('executing', e => seen.executing.push(e.detail));
    api.addEventListener('execution_success', e => { seen.success = e.detail; });
    api.addEventListener('execution_error', e => { seen.error = e.detail; });
    // each binary preview reaches the page as a 'b_preview' Blob ('b_preview_with_metadata' also names the node)
    api.addEventListener('b_preview', e => { seen.previews += 1; seen.preview_bytes += e.detail?.size ?? 0; });
    api.addEventListener('b_preview_with_metadata', e => seen.preview_nodes.push(e.detail?.nodeId ?? null));
}"""


def _browser_missing() -> str | None:
    """Why the page cannot be opened here (no driver package, no Chromium), naming the setup script."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return f"the Playwright package is not installed in this environment: {SETUP_HINT}"
    if not BROWSER.is_file():
        return f"no Chromium at {BROWSER}: {SETUP_HINT}"
    return None


def _tiny_clip(path: Path, frames: int = 4) -> None:
    """A 64×64 H.264 clip: a real video for LoadVideo's placeholder (the page previews it)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(8))
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * i, np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _write_placeholders(base: Path, object_info: dict) -> list[str]:
    """Placeholder files for the file names the workflows use and the server does not list."""
    written = []
    for path in WORKFLOWS:
        for node in load_json(path)["nodes"]:
            if node["type"] in wf.FRONTEND_ONLY:
                continue
            slots = wf.widget_slots(object_info[node["type"]])
            for (name, kind, options), value in zip(slots, node.get("widgets_values") or []):
                choices = wf.combo_options(kind, options) if name else None
                if choices is None or value in choices:
                    continue
                folder = FILE_WIDGETS.get((node["type"], name))
                assert folder, f"{path.name}: {node['type']}.{name}={value!r} is not among the server's choices"
                target = base / folder / value
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    continue
                if target.suffix == ".mp4":
                    _tiny_clip(target)
                elif target.suffix == ".png":
                    Image.new("L", (64, 64), 255).save(target)
                else:
                    target.write_bytes(b"")
                written.append(f"{folder}/{value}")
    return written


@pytest.fixture(scope="module")
def frontend_server(tmp_path_factory, comfy_path):
    """A real ComfyUI server for the page: the pack in custom_nodes, live previews on (latent2rgb), and
    placeholders for the models and inputs the workflows name (the toy world's files are the pack's own)."""
    from omnimatte_host.comfy_server import ComfyServer

    base = tmp_path_factory.mktemp("frontend_server")
    settings = base / "user" / "default" / "comfy.settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(USER_SETTINGS))
    server = ComfyServer(comfy_path, PACK_DIR, base, extra_args=("--preview-method", "latent2rgb"))
    try:
        server.start()
        written = _write_placeholders(base, server.get_json("/object_info"))
        log.info("frontend server %s; placeholders: %s", server.url, ", ".join(written))
        yield server
    finally:
        server.stop()
        log.info("frontend server log: %s", server.log_path)


@pytest.fixture(scope="module")
def frontend(frontend_server) -> Any:
    """The page, opened once for the module; without a browser, the reason (``_tab`` fails each test with it)."""
    missing = _browser_missing()
    if missing:
        yield missing
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(BROWSER), args=CHROMIUM_ARGS, headless=True)
        tab = FrontendPage(browser.new_page(viewport=VIEWPORT), frontend_server)
        try:
            tab.open()
            yield tab
        finally:
            browser.close()
            if tab.blocked:
                log.info("requests cut off (not to the test server): %s", sorted(set(tab.blocked)))


def _tab(frontend: Any) -> FrontendPage:
    """The open page, or a test failure (never a skip) that names scripts/setup-browser.sh."""
    if isinstance(frontend, str):
        pytest.fail(frontend)
    return frontend


@pytest.fixture(scope="module")
def loaded(frontend):
    """Each workflow dropped once: name → (page state, console errors during its load)."""
    cache: dict[str, tuple[dict, list[dict]]] = {}

    def load(name: str) -> tuple[dict, list[dict]]:
        if name not in cache:
            tab = _tab(frontend)
            start = len(tab.messages)
            state = tab.drop_workflow(PACK_DIR / "workflows" / f"{name}.json")
            cache[name] = (state, tab.errors_since(start))
        return cache[name]
    return load


def _without_frontend_extras(prompt: dict, object_info: dict) -> dict:
    """``prompt`` less the inputs the page adds that no node defines (``FRONTEND_PROMPT_EXTRAS``)."""
    out = {}
    for key, node in prompt.items():
        extras = FRONTEND_PROMPT_EXTRAS.get(node["class_type"], set())
        defined = {name for name, _, _ in wf.input_specs(object_info[node["class_type"]])}
        assert not extras & defined, f"{node['class_type']} now defines {extras & defined}: drop it from the extras"
        out[key] = {**node, "inputs": {k: v for k, v in node["inputs"].items() if k not in extras}}
    return out


@pytest.fixture(scope="module")
def object_info(frontend_server) -> dict:
    return frontend_server.get_json("/object_info")


def _definitions(ui: dict, object_info: dict) -> dict:
    return {n["type"]: object_info[n["type"]] for n in ui["nodes"] if n["type"] not in wf.FRONTEND_ONLY}


def _pack_node_types(object_info: dict) -> set[str]:
    """Node types this pack defines (their python_module is the pack's folder under custom_nodes)."""
    return {t for t, d in object_info.items() if d.get("python_module", "").startswith("custom_nodes.")}


def test_frontend_page_opens_without_errors_from_the_pack(frontend, object_info):
    tab = _tab(frontend)
    ours = _pack_node_types(object_info)
    assert {"OmnimatteConditioning", "BranchWanSampler", "LoadOmnimatteToyClip"} <= ours
    registered = tab.page.evaluate("(types) => types.filter(t => !(t in window.LiteGraph.registered_node_types))",
                                   sorted(ours))
    assert registered == [], f"pack node types the page did not register: {registered}"
    pack_errors = [m for m in tab.errors_since(0)
                   if "easy_omnimatte" in m["url"] or "easy_omnimatte" in m["text"] or "Omnimatte" in m["text"]]
    assert pack_errors == [], pack_errors


@pytest.mark.parametrize("name", NAMES)
def test_frontend_loads_workflow_clean(loaded, frontend, object_info, name, tmp_path):
    path = PACK_DIR / "workflows" / f"{name}.json"
    ui = load_json(path)
    state, errors = loaded(name)
    assert errors == [], f"console errors while loading {name}: {errors}"
    assert state["dialogs"] == [], f"dialogs after loading {name}: {state['dialogs']}"
    missing = sorted({n["type"] for n in state["nodes"] if not n["registered"] or n["placeholder"]})
    assert missing == [], f"node types the page does not know: {missing}"
    red = [(n["id"], n["type"]) for n in state["nodes"] if n["has_errors"]]
    assert red == [], f"nodes the page marks with errors: {red}"
    saved = {int(n["id"]): n for n in state["saved"]["nodes"]}
    assert sorted(saved) == sorted(n["id"] for n in ui["nodes"])
    for node in ui["nodes"]:
        page_node = saved[node["id"]]
        assert page_node["type"] == node["type"]
        # widget values as the file stores them (seed controls included); a node without widgets is saved
        # with no widgets_values by the page and with [] by the generator: both mean none
        assert (page_node.get("widgets_values") or []) == (node.get("widgets_values") or []), \
            f"{name}: node {node['id']} ({node['type']}) widget values differ"
        if node["type"] not in wf.FRONTEND_ONLY:
            slots = wf.widget_slots(object_info[node["type"]])
            controls = [v for (_, kind, _), v in zip(slots, node.get("widgets_values") or []) if kind == "CONTROL"]
            assert set(controls) <= {"fixed"}, f"{name}: node {node['id']} seed control {controls}: the workflows " \
                                               "ship reproducible seeds"
    assert state["saved"]["links"] == ui["links"], f"{name}: links differ from the file"
    by_id = {int(n["id"]): n for n in state["nodes"]}
    for link_id, origin, slot, target, target_slot, _kind in ui["links"]:
        page_input = by_id[target]["inputs"][target_slot]
        file_input = next(i for i in ui["nodes"] if i["id"] == target)["inputs"][target_slot]
        assert (page_input["name"], page_input["link"]) == (file_input["name"], link_id), f"{name}: link {link_id}"
    _tab(frontend).fit_and_screenshot(tmp_path / f"{name}.png")
    assert (tmp_path / f"{name}.png").stat().st_size > 20_000


@pytest.mark.parametrize("name", NAMES)
def test_frontend_prompt_matches_ui_to_api(loaded, object_info, name):
    """The page's graphToPrompt and our offline ui_to_api must agree exactly. Every control is 'fixed'
    (checked above), and graphToPrompt applies no control, so no seed may differ either."""
    ui = load_json(PACK_DIR / "workflows" / f"{name}.json")
    state, _ = loaded(name)
    ours = wf.ui_to_api(ui, _definitions(ui, object_info))
    page = _without_frontend_extras(state["output"], object_info)
    assert page == ours
    assert ours == load_json(PACK_DIR / "tests" / "workflows_api" / f"{name}.json"), "tests/workflows_api is stale"


def test_frontend_queues_the_toy_demo_and_shows_previews(frontend, frontend_server, object_info, tmp_path):
    tab = _tab(frontend)
    path = PACK_DIR / "workflows" / f"{TOY_DEMO}.json"
    ui = load_json(path)
    start = len(tab.messages)
    tab.drop_workflow(path)
    tab.page.evaluate(LISTEN_JS)
    frames_before = len(tab.preview_frames)
    began = time.monotonic()
    tab.page.evaluate("() => app.extensionManager.command.execute('Comfy.QueuePrompt')")  # the Run button
    tab.page.wait_for_function("() => window.__omnimatteRun.success || window.__omnimatteRun.error",
                               timeout=RUN_TIMEOUT_S * 1000, polling=500)
    seen = tab.page.evaluate("() => window.__omnimatteRun")
    log.info("toy demo ran from the page in %.1f s, %d previews", time.monotonic() - began, seen["previews"])
    assert seen["error"] is None, seen["error"]
    assert tab.errors_since(start) == []
    prompt_id = seen["success"]["prompt_id"]
    history = frontend_server.get_json(f"/history/{prompt_id}")[prompt_id]
    sent = _without_frontend_extras(history["prompt"][2], object_info)
    assert sent == wf.ui_to_api(ui, _definitions(ui, object_info)), "the page sent another prompt"
    # the page followed the run node by node, and got progress previews: binary websocket messages
    sampler = next(str(n["id"]) for n in ui["nodes"] if n["type"] == "BranchWanSampler")
    ran = {str(d.get("node") if isinstance(d, dict) else d) for d in seen["executing"]}
    assert {sampler, *(str(n["id"]) for n in ui["nodes"] if n["type"] == "SaveImage")} <= ran, seen["executing"]
    assert seen["previews"] >= 10 and seen["preview_bytes"] > 0, seen
    assert sampler in seen["preview_nodes"], seen["preview_nodes"]
    previews = tab.preview_frames[frames_before:]
    assert len(previews) == seen["previews"]
    image_bytes = previews[-1][8:] if previews[-1][3] == 1 else _metadata_image(previews[-1])
    with Image.open(io.BytesIO(image_bytes)) as preview:
        assert min(preview.size) >= 8, preview.size
    # the layers the save nodes wrote, and the ground-truth preview
    output = frontend_server.base_dir / "output" / "omnimatte"
    for layer in TOY_LAYERS:
        files = sorted((output / layer).glob("*.png"))
        assert len(files) == TOY_FRAMES, (layer, len(files))
        with Image.open(files[0]) as first:
            assert first.size == (128, 128) and first.mode == ("RGBA" if layer == "rgba" else "RGB"), layer
    with Image.open(sorted((output / "rgba").glob("*.png"))[TOY_FRAMES // 2]) as rgba:
        alpha = np.asarray(rgba)[..., 3]
    assert alpha.min() < 64 and alpha.max() > 192, "the RGBA layer's alpha holds no object"
    temp = [img for out in history["outputs"].values() for img in out.get("images", []) if img["type"] == "temp"]
    assert len(temp) == TOY_FRAMES and all((frontend_server.base_dir / "temp" / t["subfolder"] / t["filename"]).is_file()
                                           for t in temp)
    tab.page.wait_for_timeout(1500)  # the save nodes' images arrive on the canvas
    shot = tmp_path / "frontend_toy_demo.png"
    tab.fit_and_screenshot(shot)
    assert shot.stat().st_size > 50_000
    if os.environ.get("OMNIMATTE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)
        log.info("updated %s", SCREENSHOT)


def _metadata_image(payload: bytes) -> bytes:
    """The image of a PREVIEW_IMAGE_WITH_METADATA message: type, metadata length, JSON metadata, image."""
    length = int.from_bytes(payload[4:8], "big")
    return payload[8 + length:]
