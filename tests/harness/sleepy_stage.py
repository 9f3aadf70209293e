"""A stand-in GPU-check stage for tests/test_gpu_check.py: prints its JSON, then outlives any timeout
with a child of its own (whose pid it writes to ``argv[1]``), as long_video's cases and torchrun's
workers would."""

from __future__ import annotations

import json
import subprocess
import sys
import time

if __name__ == "__main__":
    child = subprocess.Popen(["sleep", "60"])
    with open(sys.argv[1], "w") as f:
        f.write(str(child.pid))
    print(json.dumps({"partial": True}), flush=True)
    time.sleep(60)
