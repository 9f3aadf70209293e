"""Running one API prompt in the loaded ComfyUI, headless: model files checked, the graph validated and
executed, progress in the log, the written files listed.

A :class:`GraphRunner` keeps one ComfyUI executor, whose output cache holds the loader nodes' results
(the models) between prompts with the same loader inputs: a batch loads its models once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path

from omnimatte_host import comfy_host

log = logging.getLogger("omnimatte.run")
LOADERS = {  # (node type, input) → (models folder, what it is, where to get it)
    ("UNETLoader", "unet_name"): ("diffusion_models", "Casper transformer (Wan2.1-Fun-1.3B-InP finetune)",
                                  "see README 'Model files'"),
    ("CLIPLoader", "clip_name"): ("text_encoders", "umt5-xxl text encoder", "Comfy-Org/Wan_2.1_ComfyUI_repackaged"),
    ("CLIPVisionLoader", "clip_name"): ("clip_vision", "CLIP-H vision encoder", "Comfy-Org/Wan_2.1_ComfyUI_repackaged"),
    ("VAELoader", "vae_name"): ("vae", "Wan 2.1 VAE", "Comfy-Org/Wan_2.1_ComfyUI_repackaged"),
    ("LoadOmnimatteExperts", "effect_expert"): ("omnimatte", "Effect Expert", "train with training/ (docs/training.md)"),
    ("LoadOmnimatteExperts", "quality_expert"): ("omnimatte", "Quality Expert", "train with training/ (docs/training.md)"),
    ("OmnimatteLoadTextEmbeds", "embeds_name"): ("omnimatte_text_embeds", "cached text embeddings",
                                                 "write with OmnimatteSaveTextEmbeds"),
}


class RunError(Exception):
    """A problem the user can fix; the message says how."""


def missing_models(prompt: dict) -> list[str]:
    """One line per model file the prompt names that no models folder holds."""
    import folder_paths

    lines = []
    for node in prompt.values():
        for (node_type, field), (folder, what, where) in LOADERS.items():
            name = node["inputs"].get(field) if node["class_type"] == node_type else None
            if name and name != "none" and folder_paths.get_full_path(folder, name) is None:
                lines.append(f"  models/{folder}/{name}  — {what}; {where}")
    return sorted(set(lines))


class HeadlessServer:
    """What the executor reports to; progress goes to the log."""

    client_id, last_node_id, last_prompt_id = "headless", None, None

    def __init__(self, prompt: dict):
        self.prompt = prompt
        self.messages: list = []

    def send_sync(self, event, data, sid=None) -> None:
        self.messages.append((event, data))
        if event == "executing" and data.get("node") is not None:
            node = data["node"]
            log.info("running %s (%s)", self.prompt.get(node, {}).get("_meta", {}).get("title"), node)


class GraphRunner:
    """One executor for every prompt of this process (its cache keeps loaded models between prompts)."""

    def __init__(self):
        self.executor = None

    def execute(self, prompt: dict, out: Path) -> dict:
        """Check models, validate and run ``prompt``; outputs go to ``out``. → {"files", "seconds"}."""
        import comfy.utils
        import execution
        import folder_paths

        folder_paths.set_output_directory(str(out.resolve()))
        missing = missing_models(prompt)
        if missing:
            raise RunError("missing model files (put each in the folder shown, under ComfyUI's models/ or a path "
                           "from --extra-model-paths):\n" + "\n".join(missing))
        valid, error, outputs, node_errors = asyncio.run(execution.validate_prompt(str(uuid.uuid4()), prompt, None))
        if not valid or node_errors:
            raise RunError(f"the workflow does not validate: {error.get('message') if error else ''} {node_errors}")
        server = HeadlessServer(prompt)
        if self.executor is None:
            self.executor = comfy_host.prompt_executor(server)
        self.executor.server = server  # this prompt's node titles in the log
        comfy.utils.set_progress_bar_global_hook(_log_progress(server))
        started = time.monotonic()
        self.executor.execute(prompt, str(uuid.uuid4()), {"client_id": server.client_id}, outputs)
        if not self.executor.success:
            failure = next((d for e, d in self.executor.status_messages if e == "execution_error"), {})
            raise RunError(f"{failure.get('node_type', 'a node')} failed: "
                           f"{failure.get('exception_message', '').strip()}")
        written = _written_files(self.executor.history_result.get("outputs", {}))
        log.info("done in %.1f s; %d files in %s", time.monotonic() - started, len(written), out)
        return {"files": written, "seconds": round(time.monotonic() - started, 2)}


def execute(prompt: dict, out: Path) -> dict:
    """Run one prompt with a fresh executor (a single run)."""
    return GraphRunner().execute(prompt, out)


def _log_progress(server: HeadlessServer):
    """Progress in the log at every tenth of a node's work (not every step of every chunk)."""
    last = {}

    def hook(value, total, preview=None, node_id=None):
        node = node_id or server.last_node_id
        tenth = int(10 * value / max(total, 1))
        if last.get(node) != tenth:
            last[node] = tenth
            log.info("  %s: %d/%d", server.prompt.get(node, {}).get("_meta", {}).get("title", node), value, total)
    return hook


def _written_files(outputs: dict) -> list[str]:
    files = set()
    for node_output in outputs.values():
        for key in ("images", "videos", "gifs", "omnimatte_layers"):
            for item in node_output.get(key, []) if isinstance(node_output, dict) else []:
                if isinstance(item, dict) and "filename" in item and item.get("type", "output") == "output":
                    files.add(str(Path(item.get("subfolder", "")) / item["filename"]))
    return sorted(files)
