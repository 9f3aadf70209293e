#!/usr/bin/env bash
# The README's main-job command: set up (or reuse) the environment, then run a workflow headless.
#   bash scripts/run.sh --video clip.mp4 --mask mask_00.mp4 --out layers/   (--help for all options)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$OMNIMATTE_PACK_DIR"
exec "$OMNIMATTE_PY" -m scripts.run_workflow "$@"
