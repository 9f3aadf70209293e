"""Test harness: a real ComfyUI host, tiny Wan models built through its loaders."""
