"""Run API-format graphs in-process through ComfyUI's own validator and PromptExecutor."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

CAPTURE_NODE = "OmnimatteTestCapture"
SOURCE_NODE = "OmnimatteTestSource"
CLIENT_ID = "omnimatte-tests"  # with a client id the executor records last_node_id, as for a browser
_captured: dict[str, Any] = {}
sources: dict[str, Any] = {}  # values that OmnimatteTestSource nodes emit, by key


class _ServerStub:
    """What PromptExecutor reads from the server (DESIGN §2), recording every event."""

    def __init__(self) -> None:
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.events: list[tuple[str, Any]] = []

    def send_sync(self, event, data, sid=None) -> None:
        self.events.append((event, data))


def _capture_node_class():
    """Test-only nodes: a capture (output node keeping what reaches it) and a source of tensors."""
    from comfy_api.latest import io

    class OmnimatteTestCapture(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id=CAPTURE_NODE, category="testing", is_output_node=True,
                             inputs=[io.AnyType.Input("value"), io.String.Input("key")], outputs=[])

        @classmethod
        def execute(cls, value, key):
            _captured[key] = value
            return io.NodeOutput()

    class OmnimatteTestSource(io.ComfyNode):
        @classmethod
        def define_schema(cls):
            return io.Schema(node_id=SOURCE_NODE, category="testing", not_idempotent=True,
                             inputs=[io.String.Input("key")], outputs=[io.AnyType.Output("value")])

        @classmethod
        def fingerprint_inputs(cls, key):
            return float("nan")  # never equal to itself: ComfyUI re-runs the node every time

        @classmethod
        def execute(cls, key):
            return io.NodeOutput(sources[key])

    return OmnimatteTestCapture, OmnimatteTestSource


def load_nodes(pack_dir) -> Any:
    """Load core's extra nodes and this pack exactly as ComfyUI's startup does."""
    import nodes

    from omnimatte_host.comfy_host import load_nodes_with_pack

    load_nodes_with_pack()
    capture, source = _capture_node_class()
    nodes.NODE_CLASS_MAPPINGS[CAPTURE_NODE] = capture
    nodes.NODE_CLASS_MAPPINGS[SOURCE_NODE] = source
    import sys

    return sys.modules[str(pack_dir).replace(".", "_x_")]


@dataclass
class GraphResult:
    success: bool
    outputs: dict[str, Any]
    captured: dict[str, Any]
    messages: list = field(default_factory=list)
    events: list = field(default_factory=list)

    def error_message(self) -> str:
        """The failing node's exception message, as the browser shows it."""
        return str(self.error().get("exception_message", "")).strip()

    def error(self) -> dict:
        for event, data in self.messages:
            if event == "execution_error":
                return data
        return {}


class GraphRunner:
    """One PromptExecutor reused across graphs (ComfyUI's cache then works as in the app)."""

    def __init__(self) -> None:
        from omnimatte_host.comfy_host import prompt_executor

        self.server = _ServerStub()
        self.executor = prompt_executor(self.server)

    def validate(self, prompt: dict) -> tuple:
        import execution

        return asyncio.run(execution.validate_prompt(str(uuid.uuid4()), prompt, None))

    def run(self, prompt: dict, extra_data: dict | None = None) -> GraphResult:
        valid, error, outputs, node_errors = self.validate(prompt)
        if not valid:
            raise GraphInvalid(error, node_errors)
        _captured.clear()
        self.server.events.clear()
        self.executor.execute(prompt, str(uuid.uuid4()), {"client_id": CLIENT_ID, **(extra_data or {})}, outputs)
        return GraphResult(self.executor.success, dict(self.executor.history_result.get("outputs", {})),
                           dict(_captured), list(self.executor.status_messages), list(self.server.events))


class GraphInvalid(Exception):
    def __init__(self, error, node_errors):
        super().__init__(f"{error}; node errors: {node_errors}")
        self.error = error
        self.node_errors = node_errors


def widget_defaults(node_type: str) -> dict[str, Any]:
    """Default widget values of a node's required inputs as the host defines them (they differ between hosts)."""
    from omnimatte_workflows import workflow_format as wf

    spec = wf.node_definition(node_type)
    required = spec["input"].get("required", {})
    values = {}
    for name, kind, options in wf.input_specs(spec):
        if name not in required or not wf.is_widget(kind, options):
            continue
        choices = wf.combo_options(kind, options)
        if "default" in options or choices:
            values[name] = options.get("default", choices[0] if choices else None)
    return values
