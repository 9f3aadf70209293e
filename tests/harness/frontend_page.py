"""One browser tab on a test server's ComfyUI page (tests/test_frontend*.py): its console, page errors and
live-preview frames recorded, requests beyond the server cut off, workflows dropped on the canvas as a
user drags them in."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("tests.frontend")
PAGE_TIMEOUT_MS = 120_000

# Errors of the frontend itself, whatever the workflow: (substrings that all appear in the message, why).
KNOWN_FRONTEND_ERRORS = [
    (("Failed to execute 'removeChild' on 'Node'", "removeMask", "vendor-primevue"),
     "PrimeVue BlockUI removes its mask twice when the page's loading spinner toggles quickly; seen now and "
     "then on the first drop after the page opens, with any workflow, never from the pack's code"),
]

# Drops a workflow file onto the canvas: the same 'drop' event (a DataTransfer holding a File) that the
# frontend's document-level drop handler reads when a user drags a .json in.
DROP_JS = """([text, name]) => {
    const transfer = new DataTransfer();
    transfer.items.add(new File([text], name, {type: 'application/json'}));
    const canvas = document.querySelector('#graph-canvas');
    const box = canvas.getBoundingClientRect();
    canvas.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true,
                                                clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}));
}"""
# What the page made of the loaded graph: its own save format, its own prompt, and per-node state.
STATE_JS = """async () => {
    const prompt = await app.graphToPrompt();
    const registered = window.LiteGraph.registered_node_types;
    const nodes = app.graph.nodes.map(n => ({
        id: n.id, type: n.type, registered: n.type in registered, has_errors: !!n.has_errors,
        placeholder: n.last_serialization !== undefined,
        inputs: (n.inputs || []).map(i => ({name: i.name, link: i.link ?? null}))}));
    const dialogs = [...document.querySelectorAll('.p-dialog, [role="dialog"]')].filter(d => d.checkVisibility())
        .map(d => d.innerText.slice(0, 400));
    return {saved: app.graph.serialize(), output: prompt.output, nodes, dialogs};
}"""

def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


class FrontendPage:
    """One browser tab on the server's page, with its console and page errors recorded."""

    def __init__(self, page: Any, server: Any) -> None:
        self.page = page
        self.server = server
        self.messages: list[dict] = []
        self.blocked: list[str] = []
        self.preview_frames: list[bytes] = []
        page.on("console", lambda m: self.messages.append(
            {"kind": m.type, "text": m.text, "url": (m.location or {}).get("url", "")}))
        page.on("pageerror", lambda e: self.messages.append({"kind": "pageerror", "text": str(e), "url": ""}))
        page.on("response", lambda r: r.status >= 400 and self.messages.append(
            {"kind": "http", "text": f"{r.status} {r.request.method} {r.url}", "url": r.url}))
        page.on("websocket", self._watch_websocket)
        page.route("**/*", self._only_the_server)

    def _only_the_server(self, route: Any) -> None:
        """Nothing leaves this machine: requests beyond the test server (update checks, model URLs) are cut."""
        if route.request.url.startswith(self.server.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def _watch_websocket(self, socket: Any) -> None:
        def frame(payload: Any) -> None:
            # binary server messages: 4-byte event type; 1 = preview image, 4 = preview image with metadata
            if isinstance(payload, bytes) and len(payload) > 8 and payload[3] in (1, 4):
                self.preview_frames.append(payload)
        socket.on("framereceived", frame)

    def open(self) -> None:
        self.page.goto(self.server.url)
        # ready once the start-up graph (the default one) is on the canvas
        self.page.wait_for_function("() => window.app?.graph?.nodes?.length > 0 && window.app.canvas && window.app.api"
                                    " && document.querySelector('#graph-canvas')", timeout=PAGE_TIMEOUT_MS)
        self.page.wait_for_load_state("networkidle")

    def errors_since(self, start: int) -> list[dict]:
        """Console errors and uncaught exceptions from ``start`` on, except requests this test cut off and
        the frontend's own known races (``KNOWN_FRONTEND_ERRORS``, logged when seen)."""
        errors = []
        for message in self.messages[start:]:
            if message["kind"] not in ("error", "pageerror", "http"):
                continue
            if message["text"].startswith("Failed to load resource") and not message["url"].startswith(self.server.url):
                continue  # a request _only_the_server cut off
            known = next((why for marks, why in KNOWN_FRONTEND_ERRORS
                          if all(mark in message["text"] for mark in marks)), None)
            if known:
                log.warning("frontend error not caused by the pack (%s): %s", known, message["text"][:200])
                continue
            errors.append(message)
        return errors

    def drop_workflow(self, path: Path) -> dict:
        """Drop ``path`` on the canvas, wait until its nodes are on the graph and settled; → the page's state."""
        ui = load_json(path)
        ids = sorted(n["id"] for n in ui["nodes"])
        self.page.evaluate(DROP_JS, [path.read_text(), path.name])
        self.page.wait_for_function(
            "(ids) => JSON.stringify(app.graph.nodes.map(n => Number(n.id)).sort((a, b) => a - b)) === JSON.stringify(ids)",
            arg=ids, timeout=30_000)
        self.page.wait_for_timeout(1000)  # the drop handler's deferred warnings and missing-file scans
        return self.page.evaluate(STATE_JS)

    def fit_and_screenshot(self, target: Path) -> None:
        self.page.evaluate("() => app.extensionManager.command.execute('Comfy.Canvas.FitView')")
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=str(target))
