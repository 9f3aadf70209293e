"""The runner's logging: everything to OUT/omnimatte-run.log, a readable console.

The console shows the runner's own lines and every warning; ComfyUI's start-up chatter and the
executor's ``!!! Exception during processing !!!`` tracebacks go to the log file only (or to the
console too with ``--verbose``), because the runner prints its own one-line reason for a failure.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

LOG_NAME = "omnimatte-run.log"
CRASH_MARKER = "unexpected failure; traceback follows"
OWN_LOGGERS = ("omnimatte",)  # the runner, preflight and demo loggers
FILE_ONLY = (
    "!!! Exception during processing",  # the executor's banner; the runner says what failed
    "Traceback (most recent call last)",
    CRASH_MARKER,
    # nodes_replacements registers frontend node replacements through the web server, which a headless run
    # does not start; the warning is harmless here.
    "nodes_replacements.py: type object 'PromptServer' has no attribute 'instance'",
)


class ConsoleFilter(logging.Filter):
    """Own INFO lines and all warnings, minus what only the log file needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(marker in message for marker in FILE_ONLY):
            return False
        return record.levelno >= logging.WARNING or record.name.startswith(OWN_LOGGERS)


def setup(out: Path, verbose: bool, counter: logging.Handler | None = None) -> Path:
    """Log to ``out/omnimatte-run.log`` (appended, timestamped) and to stderr; → the log file's path.
    ``counter`` (a handler) also receives every record, e.g. to count warnings for the summary."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOG_NAME
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.INFO)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    if not verbose:
        console.addFilter(ConsoleFilter())
    root.addHandler(to_file)
    root.addHandler(console)
    if counter is not None:
        root.addHandler(counter)
    logging.getLogger("omnimatte.run").info("log file: %s", path)
    return path
