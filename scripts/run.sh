#!/usr/bin/env bash
# The README's main-job command: set up (or reuse) the environment, then run a workflow headless.
#   bash scripts/run.sh                                                    (the toy-world demo)
#   bash scripts/run.sh --video clip.mp4 --mask mask_00.mp4 --out layers/   (--help for all options)
# Relative paths mean what they mean where you ran the command.
set -euo pipefail
export OMNIMATTE_CALLER_DIR="$PWD"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$OMNIMATTE_PACK_DIR"
exec "$OMNIMATTE_PY" -m omnimatte_run "$@"
