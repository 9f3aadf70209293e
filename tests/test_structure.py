"""The house keeps its shape (issue 24, docs/architecture.md): each folder one job, imports only
downward through the layers below, no import cycles between modules, no Python file over 400 lines,
and ``scripts/`` holding shell entry points only. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
import subprocess
from collections import defaultdict
from pathlib import Path

from omnimatte_host.comfy_host import PACK_DIR

# A package may import itself and the packages listed for it, nothing else of the pack. ``nodes`` is
# left out on purpose: ``import nodes`` outside the pack's own folder is ComfyUI's nodes.py.
ALLOWED = {
    "omnimatte_core": set(),
    "omnimatte_host": {"omnimatte_core"},
    "training": {"omnimatte_core", "omnimatte_host"},
    "omnimatte_workflows": {"omnimatte_core", "omnimatte_host"},
    "omnimatte_eval": {"omnimatte_core", "omnimatte_host", "omnimatte_workflows", "training"},
    "omnimatte_run": {"omnimatte_core", "omnimatte_host", "omnimatte_workflows", "omnimatte_eval"},
    "benchmarks": {"omnimatte_core", "omnimatte_host", "omnimatte_workflows", "omnimatte_eval", "omnimatte_run",
                   "training"},
    "tests": {"omnimatte_core", "omnimatte_host", "omnimatte_workflows", "omnimatte_eval", "omnimatte_run",
              "training", "benchmarks", "harness"},
}
MAX_LINES = 400
SHELL_ENTRY_POINTS = {"env.sh", "run.sh", "test.sh", "setup-browser.sh", "gpu_toy_build.sh"}


def tracked(pattern: str) -> list[Path]:
    """The pack's files (tracked, or new and not ignored) that exist now."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", pattern], cwd=PACK_DIR,
                            capture_output=True, text=True, check=True)
    return [PACK_DIR / line for line in sorted(set(listed.stdout.splitlines())) if (PACK_DIR / line).is_file()]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACK_DIR).with_suffix("").parts)
    if parts[0] == "tests" and len(parts) > 1 and parts[1] == "harness":
        parts = parts[1:]  # the tests put tests/ on sys.path: harness is imported as ``harness``
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Absolute module names ``path`` imports anywhere in its body (lazy imports included)."""
    found = set()
    if package is None:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # ``from pkg import module``
    return found


def pack_modules() -> dict[str, Path]:
    return {module_name(p): p for p in tracked("*.py") if p.parts[len(PACK_DIR.parts)] in ALLOWED}


def test_every_package_imports_only_the_layers_below_it():
    upward = []
    for name, path in pack_modules().items():
        own = "tests" if name.startswith("harness") else name.split(".")[0]
        for imported in imported_modules(path):
            top = imported.split(".")[0]
            if top in ALLOWED and top != own and top not in ALLOWED[own]:
                upward.append(f"{path.relative_to(PACK_DIR)} imports {imported}")
    assert upward == [], "imports against the layering of docs/architecture.md:\n" + "\n".join(upward)


def test_no_import_cycles_between_the_packs_modules():
    modules = pack_modules()
    graph = defaultdict(set)
    for name, path in modules.items():
        graph[name] = {m for m in imported_modules(path) if m in modules and m != name}
    cycles = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycles.append(" → ".join(stack[stack.index(nxt):] + [name, nxt]) if nxt in stack
                              else f"{name} → {nxt}")
            elif nxt not in state:
                visit(nxt, stack + [name])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == [], "import cycles:\n" + "\n".join(cycles)


def test_the_scanner_sees_lazy_and_relative_imports(tmp_path):
    """The checks above can fail: the same reading finds an upward import inside a function."""
    planted = PACK_DIR / "omnimatte_core" / "quantise.py"
    imports = imported_modules(planted)
    assert "torch" in imports and not any(m.startswith("omnimatte_run") for m in imports)
    fake = tmp_path / "f.py"
    fake.write_text("def f():\n    from omnimatte_run.run_workflow import main\n    from . import sibling\n")
    assert {"omnimatte_run.run_workflow", "omnimatte_core.sibling"} <= imported_modules(fake, "omnimatte_core")


def test_no_python_file_is_over_400_lines():
    long = {str(p.relative_to(PACK_DIR)): n for p in tracked("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these (docs/architecture.md): {long}"


def test_scripts_holds_shell_entry_points_only():
    files = {p.relative_to(PACK_DIR / "scripts") for p in tracked("scripts/*")}
    python = [str(f) for f in files if f.suffix == ".py" and f.parts[0] != "device"]
    assert python == [], f"Python under scripts/ belongs in a package (docs/architecture.md): {python}"
    assert {f.name for f in files if len(f.parts) == 1} == SHELL_ENTRY_POINTS


GEOMETRY = ("resize_frames", "padded_length", "mirror_index", "mirror_pad_time", "crop_and_restore")


def test_frame_geometry_lives_in_one_core_module():
    """Resize, padding and crop are defined once, in ``omnimatte_core.frame_geometry``, and conditioning,
    decoding (``conditioning.layers_to_source``) and the layer writer take them from there. The independent
    references under tests/ and benchmarks/references/ keep their own copies on purpose."""
    shipped = [p for p in tracked("*.py") if p.parts[len(PACK_DIR.parts)] not in ("tests", "benchmarks")]
    defined = [f"{p.relative_to(PACK_DIR)}:{node.name}" for p in shipped
               for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.FunctionDef)
               and node.name in GEOMETRY and p.name != "frame_geometry.py"]
    assert defined == [], f"a second copy of the frame geometry: {defined}"
    for user in ("conditioning.py", "layer_writer.py"):
        assert "omnimatte_core.frame_geometry" in imported_modules(PACK_DIR / "omnimatte_core" / user), user
