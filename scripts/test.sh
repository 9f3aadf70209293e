#!/usr/bin/env bash
# The README's test command: set up (or reuse) the environment, then run the test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$OMNIMATTE_PACK_DIR"
echo "EasyOmnimatte tests: ComfyUI at $COMFYUI_PATH, python $OMNIMATTE_PY" >&2
export OMP_NUM_THREADS="${OMNIMATTE_TEST_THREADS:-1}"
exec "$OMNIMATTE_PY" -m pytest "$@"
