"""Finding, importing and serving the ComfyUI host (docs/architecture.md).

The lowest layer above ``omnimatte_core``: every tool that needs ComfyUI outside a ComfyUI
process (the runner, the builders, training, benchmarks, tests) gets it from here.
"""
