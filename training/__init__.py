"""training/: offline tools that make the experts (DESIGN §1, docs/training.md).

- ``data``: synthetic composites (foreground over background, pseudo-shadow, camera motion),
  ``python -m training.data --preview grid.png``;
- ``train``: Effect/Quality expert training through the very same dual-branch forward as
  inference (``omnimatte_core.patching``), single process or DDP via ``torchrun``;
- ``analyze_blocks``: Effects-Association score per block, suggested K;
- ``sweep_tau``: dual-expert sampling over a τ grid, MSE on object and effect regions.

Nothing here is imported by the nodes. Modules that need ComfyUI import it lazily, after
``omnimatte_host.comfy_host.import_comfy`` has run (the CLIs call it first).
"""
