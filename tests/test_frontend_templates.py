"""The pack as a user meets it in the real frontend: its workflows in the templates browser, with their
thumbnails, opened from there; and its nodes in another language (``locales/zh``).

ComfyUI lists ``workflows/*.json`` of every pack at ``/workflow_templates`` and serves the folder at
``/api/workflow_templates/<pack folder>/``; the frontend shows each as a card with ``<name>.jpg`` and loads it
on a click. Translations come from ``locales/<lang>/nodeDefs.json`` through ``/i18n``. Same page and server
as ``test_frontend.py`` (its fixtures), one module-wide page.
"""

from __future__ import annotations

import json

from PIL import Image

from omnimatte_workflows import workflow_thumbnails as thumbs
from omnimatte_host.comfy_host import PACK_DIR
from harness.frontend_page import STATE_JS
from test_frontend import NAMES, _tab, frontend, frontend_server  # noqa: F401  (fixtures)

PACK_FOLDER = "easy_omnimatte"  # the server's custom_nodes/<name> (ComfyServer's pack_name)
TEMPLATE = "toy_world_demo"
BROWSER_TIMEOUT_MS = 180_000
ZH = json.loads((PACK_DIR / "locales" / "zh" / "nodeDefs.json").read_text(encoding="utf-8"))

CARDS_JS = """() => Object.fromEntries([...document.querySelectorAll('[data-testid^="template-workflow-"]')].map(c => {
    const img = c.querySelector('img');
    return [c.getAttribute('data-testid').slice('template-workflow-'.length),
            img ? {loaded: img.complete && img.naturalWidth > 0, width: img.naturalWidth, height: img.naturalHeight}
                : null];
}))"""
IMAGE_READY_JS = """(name) => { const img = document.querySelector(`[data-testid="template-workflow-${name}"] img`);
    return !!img && img.complete && img.naturalWidth > 0; }"""
# What the page made of a node type after a language change: the registered title, a new node's title and
# its input slots' shown names (the frontend puts a translated input name in the slot's localized_name)
NODE_LANGUAGE_JS = """(type) => { const node = LiteGraph.createNode(type);
    return {registered: LiteGraph.registered_node_types[type].title, title: node.title,
            inputs: Object.fromEntries((node.inputs || []).map(i => [i.name, i.localized_name ?? i.label ?? null]))}; }"""


def _open_templates_browser(tab) -> None:
    tab.page.evaluate("() => app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    tab.page.wait_for_selector('[data-testid="template-workflows-content"]', timeout=BROWSER_TIMEOUT_MS)
    # the pack's entry under Custom Nodes, once /workflow_templates has answered (slow on a loaded machine)
    tab.page.get_by_text(PACK_FOLDER, exact=True).first.click(timeout=BROWSER_TIMEOUT_MS)
    tab.page.wait_for_selector(f'[data-testid="template-workflow-{TEMPLATE}"]', timeout=BROWSER_TIMEOUT_MS)


def test_frontend_templates_browser_lists_the_pack_with_thumbnails_and_loads_one(frontend):
    tab = _tab(frontend)
    fetched: dict[str, int] = {}
    prefix = f"{tab.server.url}/api/workflow_templates/{PACK_FOLDER}/"
    tab.page.on("response", lambda r: r.url.startswith(prefix) and fetched.__setitem__(r.url[len(prefix):], r.status))
    start = len(tab.messages)
    _open_templates_browser(tab)
    assert sorted(tab.page.evaluate(CARDS_JS)) == sorted(NAMES), "the pack's cards are not its workflows"
    for name in NAMES:  # the cards load their pictures when scrolled into view
        tab.page.locator(f'[data-testid="template-workflow-{name}"]').scroll_into_view_if_needed()
        tab.page.wait_for_function(IMAGE_READY_JS, arg=name, timeout=BROWSER_TIMEOUT_MS)
    cards = tab.page.evaluate(CARDS_JS)
    for name in NAMES:
        assert cards[name] == {"loaded": True, "width": thumbs.SIZE, "height": thumbs.SIZE}, (name, cards[name])
        assert fetched.get(f"{name}.jpg") == 200, f"{name}.jpg was not fetched from the pack: {fetched}"
    with Image.open(PACK_DIR / "workflows" / f"{TEMPLATE}.jpg") as picture:
        assert picture.size == (thumbs.SIZE, thumbs.SIZE)

    tab.page.locator(f'[data-testid="template-workflow-{TEMPLATE}"]').click()
    ui = json.loads((PACK_DIR / "workflows" / f"{TEMPLATE}.json").read_text())
    tab.page.wait_for_function(
        "(n) => app.graph.nodes.length === n && app.graph.nodes.some(x => x.type === 'LoadOmnimatteToyClip')",
        arg=len(ui["nodes"]), timeout=BROWSER_TIMEOUT_MS)
    tab.page.wait_for_timeout(1500)  # the loader's deferred missing-node and missing-model checks
    state = tab.page.evaluate(STATE_JS)
    assert sorted(n["type"] for n in state["nodes"]) == sorted(n["type"] for n in ui["nodes"])
    assert [n["type"] for n in state["nodes"] if not n["registered"] or n["placeholder"]] == [], "missing nodes"
    assert [n["type"] for n in state["nodes"] if n["has_errors"]] == [], "nodes the page marks red"
    assert state["dialogs"] == [], f"dialogs after loading the template: {state['dialogs']}"
    assert tab.errors_since(start) == []


def test_frontend_shows_the_pack_nodes_in_chinese_after_a_language_switch(frontend):
    tab = _tab(frontend)
    english = tab.page.evaluate(NODE_LANGUAGE_JS, "BranchWanSampler")
    assert english["registered"] == "Branch Wan Sampler (Omnimatte)", english
    start = len(tab.messages)
    try:
        tab.page.evaluate("async () => await app.extensionManager.setting.set('Comfy.Locale', 'zh')")
        tab.open()  # node definitions are translated when the page loads them
        chinese = tab.page.evaluate(NODE_LANGUAGE_JS, "BranchWanSampler")
        conditioning = tab.page.evaluate(NODE_LANGUAGE_JS, "OmnimatteConditioning")
        errors = tab.errors_since(start)
    finally:
        tab.page.evaluate("async () => await app.extensionManager.setting.set('Comfy.Locale', 'en')")
    wanted = ZH["BranchWanSampler"]["display_name"]
    assert wanted == "分支 Wan 采样器（Omnimatte）"
    assert chinese["registered"] == wanted and chinese["title"] == wanted, chinese
    assert conditioning["title"] == ZH["OmnimatteConditioning"]["display_name"], conditioning
    assert conditioning["inputs"].get("object_mask") == ZH["OmnimatteConditioning"]["inputs"]["object_mask"]["name"], \
        conditioning
    # a page load 404s on user.css and empty userdata folders whatever the language; nothing may fail on the
    # translations, the pack's files or in the page's code
    ours = [e for e in errors if e["kind"] == "pageerror"
            or any(mark in e["text"] for mark in ("i18n", "locale", "Locale", "nodeDefs", "mnimatte", PACK_FOLDER))]
    assert ours == [], ours
