"""The Comfy Registry's archive of this pack, built by the rules `comfy node pack` follows.

What ComfyUI-Manager installs from the registry is the zip that ``comfy node publish`` uploads, so
the tests build that zip without comfy-cli (it is not in requirements-dev.txt) and compare with
comfy-cli's own ``node pack`` where it is installed. The rules, from comfy-cli's
``file_utils.zip_files`` (read, not copied):

1. the files ``git ls-files`` lists (as they are in the working tree; a listed file missing
   from the tree is skipped);
2. minus those ``.comfyignore`` matches (.gitignore syntax, ``#`` comments, last match wins),
   unless the path is under a ``[tool.comfy] includes`` entry;
3. plus every file on disk under each ``includes`` entry (a missing entry becomes an empty
   folder in the zip), tracked or not.

Matching uses git's own ignore matcher (``git ls-files --ignored --exclude-from``), which is
what comfy-cli's ``gitwildmatch`` patterns emulate, so no extra package is needed.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tomllib
import zipfile
from pathlib import Path

IGNORE_FILE = ".comfyignore"

log = logging.getLogger("omnimatte.registry_archive")


def _git_paths(pack_dir: Path, *args: str) -> list[str]:
    out = subprocess.run(["git", "-C", str(pack_dir), "ls-files", "-z", *args], check=True,
                         capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p]


def includes(pack_dir: Path) -> list[str]:
    """``[tool.comfy] includes`` as comfy-cli normalises them (no leading slash, no ``./``)."""
    config = tomllib.loads((pack_dir / "pyproject.toml").read_text(encoding="utf-8-sig"))
    entries = config.get("tool", {}).get("comfy", {}).get("includes", [])
    return [os.path.normpath(entry.lstrip("/")).replace(os.sep, "/") for entry in entries]


def _under(path: str, prefixes: list[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes if p not in ("", "."))


def archive_files(pack_dir: Path) -> dict[str, Path]:
    """Archive name → file on disk, by the three rules above (empty folders from rule 3 as ``name/``)."""
    forced = includes(pack_dir)
    ignored: set[str] = set()
    if (pack_dir / IGNORE_FILE).is_file():
        ignored = set(_git_paths(pack_dir, "--cached", "--ignored", f"--exclude-from={IGNORE_FILE}"))
    files = {p: pack_dir / p for p in _git_paths(pack_dir, "--cached")
             if (p not in ignored or _under(p, forced)) and (pack_dir / p).is_file()}
    for entry in forced:
        root = pack_dir / entry
        if root.is_file():
            files.setdefault(entry, root)
        elif not root.exists():
            log.warning("includes names %s, which does not exist: the archive gets an empty folder", entry)
            files.setdefault(entry + "/", root)
        else:
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                files.setdefault(path.relative_to(pack_dir).as_posix(), path)
    return dict(sorted(files.items()))


def build(pack_dir: Path, zip_path: Path) -> list[str]:
    """Write the archive to ``zip_path`` (deflated, names relative to the pack root); → its names."""
    files = archive_files(pack_dir)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in files.items():
            if name.endswith("/"):
                archive.writestr(name, "")
            else:
                archive.write(path, name)
    log.info("registry archive: %d files, %.1f MB, at %s", len(files), zip_path.stat().st_size / 1e6, zip_path)
    return list(files)


def tracked_copy(pack_dir: Path, target: Path) -> Path:
    """A fresh git repository holding the pack's tracked files as they are now, for ``comfy node pack``
    (which writes node.zip into the folder it runs in, and must not write into the checkout)."""
    for name in _git_paths(pack_dir, "--cached"):
        source = pack_dir / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(source.read_bytes())
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(target)], check=True, env=env)
    subprocess.run(["git", "-C", str(target), "add", "--force", "."], check=True, env=env)
    return target
