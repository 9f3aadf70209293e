"""omnimatte_core: the EasyOmnimatte library under the ComfyUI nodes.

Host-independent maths live in small modules (``expert_file``, ``branch_lora``,
``branch_attention``, ``schedule``, ``layers`` …); ``patching`` is the one module
that talks to ComfyUI's model patcher. Nothing here imports node code.
"""
