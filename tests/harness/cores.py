"""Every core for one long computation the suite waits on, then back to its thread count
(OMNIMATTE_TEST_THREADS, 1 by default): the 30-minute CI budget on a 2-core box."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


def core_count() -> int:
    return os.cpu_count() or 1


@contextlib.contextmanager
def every_core() -> Iterator[int]:
    """Torch in this process on every core inside the block (a module fixture's decompositions)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(core_count())
    try:
        yield core_count()
    finally:
        torch.set_num_threads(before)


def every_core_env(**extra: str) -> dict[str, str]:
    """The environment for a child process the test waits on: its torch on every core."""
    return {**os.environ, "OMP_NUM_THREADS": str(core_count()), "OMNIMATTE_TEST_THREADS": str(core_count()),
            **extra}
