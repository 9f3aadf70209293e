"""A stand-in for PyAV on the lent GPU machine, for the benchmarks only (docs/performance.md).

That machine has no PyAV, and its wheel does not fit the 64 MiB the device tool carries beside
the pack and the host. ComfyUI imports ``av`` at module level for its video types; the GPU
benchmarks never read or write a video (frames come from core nodes), so any attribute of this
package or its submodules is a placeholder, and calling one raises. Never on a user's path.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types


class _PlaceholderMeta(type):
    def __getattr__(cls, name: str):
        return cls

    def __call__(cls, *args, **kwargs):
        raise RuntimeError("PyAV is not installed here: this is the benchmark device's stand-in (scripts/device)")


class Placeholder(metaclass=_PlaceholderMeta):
    pass


def _module_getattr(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return Placeholder


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path, target=None):
        if fullname.startswith("av."):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = _module_getattr
        return module

    def exec_module(self, module):
        pass


__getattr__ = _module_getattr
sys.meta_path.insert(0, _Finder())
