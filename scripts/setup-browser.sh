#!/usr/bin/env bash
# Installs what the frontend tests (tests/test_frontend.py) need to open ComfyUI's page:
#   - Debian's Chromium and chromedriver (apt; needs root),
#   - the pinned Playwright Python package in the test environment ($OMNIMATTE_PY).
# Playwright's own browser downloads are never used: the tests launch /usr/bin/chromium.
# Idempotent: a quick no-op when everything is already there. --check only tells (exit status).
set -euo pipefail

# Keep in step with requirements-dev.txt.
PLAYWRIGHT_PIN="playwright==1.65.2"
BROWSER="${OMNIMATTE_CHROMIUM:-/usr/bin/chromium}"

if [ -z "${OMNIMATTE_PY:-}" ]; then
  source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
fi

browser_present() { [ -x "$BROWSER" ] && command -v chromedriver >/dev/null 2>&1; }
driver_present() {
  "$OMNIMATTE_PY" - "${PLAYWRIGHT_PIN#*==}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version("playwright") == sys.argv[1] else 1)
PY
}

if [ "${1:-}" = "--check" ]; then  # exit 0 when everything is there, 1 otherwise; installs nothing
  browser_present && driver_present
  exit
fi

if ! browser_present; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: $BROWSER or chromedriver is missing; install Debian's 'chromium' and 'chromium-driver'" \
         "as root (apt-get install chromium chromium-driver), or run this script as root" >&2
    exit 1
  fi
  echo "setup-browser: installing Debian's chromium and chromium-driver (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends chromium chromium-driver >&2
fi

if ! driver_present; then
  echo "setup-browser: installing $PLAYWRIGHT_PIN into $OMNIMATTE_PY (no browser download)" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$OMNIMATTE_PY" -m pip install -q "$PLAYWRIGHT_PIN" \
      2> >(grep -v "^WARNING: Location '" >&2)
fi

if ! browser_present || ! driver_present; then
  echo "setup-browser: still missing after the install: $BROWSER, chromedriver or $PLAYWRIGHT_PIN" >&2
  exit 1
fi
echo "setup-browser: ready ($("$BROWSER" --version 2>/dev/null | head -1), $PLAYWRIGHT_PIN)" >&2
