"""The headless runner: ``python -m omnimatte_run`` (``bash scripts/run.sh``) runs a workflow's graph
through ComfyUI's executor on files, a folder of clips or a batch (docs/architecture.md)."""
