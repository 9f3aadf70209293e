#!/usr/bin/env bash
# The README's test command: set up (or reuse) the environment, then run the test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$OMNIMATTE_PACK_DIR"
echo "EasyOmnimatte tests: ComfyUI at $COMFYUI_PATH, python $OMNIMATTE_PY" >&2
# The frontend tests (tests/test_frontend.py) need Chromium and the pinned Playwright: install them
# when we can (root with apt-get); where we cannot, those tests fail naming scripts/setup-browser.sh.
if ! bash scripts/setup-browser.sh --check 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    bash scripts/setup-browser.sh || echo "EasyOmnimatte: scripts/setup-browser.sh failed; the frontend tests" \
                                          "will fail until it succeeds" >&2
  else
    echo "EasyOmnimatte: no Chromium or Playwright for the frontend tests and no root/apt-get to install" \
         "them: run scripts/setup-browser.sh as root (those tests will fail until then)" >&2
  fi
fi
export OMP_NUM_THREADS="${OMNIMATTE_TEST_THREADS:-1}"
exec "$OMNIMATTE_PY" -m pytest "$@"
