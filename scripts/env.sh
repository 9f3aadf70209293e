#!/usr/bin/env bash
# Shared setup for the README's two commands (sourced, not run).
#
# 1. Finds the ComfyUI host: $COMFYUI_PATH, else the ComfyUI this pack sits in
#    (ComfyUI/custom_nodes/<pack>), else ~/ComfyUI, else the pinned copy in the cache; with none,
#    it shallow-clones the pinned tag ($OMNIMATTE_COMFYUI_TAG from $OMNIMATTE_COMFYUI_GIT) there.
# 2. Creates or reuses a virtual environment outside the checkout, keyed by a hash of
#    every requirements file involved, so a clean clone does not reinstall ~6 GB.
#    It installs the matching torch trio, the host's requirements.txt and ours.
# Afterwards: $COMFYUI_PATH and $OMNIMATTE_PY are set.
set -euo pipefail

OMNIMATTE_PACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TORCH_TRIO="torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0"

# The ComfyUI a fresh machine gets when none is found: a shallow clone of this tag into the cache.
OMNIMATTE_COMFYUI_TAG="${OMNIMATTE_COMFYUI_TAG:-v0.33.0}"
OMNIMATTE_COMFYUI_GIT="${OMNIMATTE_COMFYUI_GIT:-https://github.com/comfyanonymous/ComfyUI.git}"
OMNIMATTE_COMFYUI_CACHE="${OMNIMATTE_COMFYUI_CACHE:-$HOME/.cache/easy-omnimatte/comfyui}"

_omnimatte_is_host() { [ -f "$1/main.py" ] && [ -d "$1/comfy" ]; }

omnimatte_find_host() {
  local candidates=()
  if [ -n "${COMFYUI_PATH:-}" ]; then
    candidates=("$COMFYUI_PATH")
  else
    local parent
    parent=$(dirname "$OMNIMATTE_PACK_DIR")
    [ "$(basename "$parent")" = "custom_nodes" ] && candidates+=("$(dirname "$parent")")
    candidates+=("$HOME/ComfyUI" "$OMNIMATTE_COMFYUI_CACHE/$OMNIMATTE_COMFYUI_TAG")
  fi
  local c
  for c in "${candidates[@]}"; do
    if _omnimatte_is_host "$c"; then
      COMFYUI_PATH=$(cd "$c" && pwd)
      export COMFYUI_PATH
      return 0
    fi
  done
  if [ -z "${COMFYUI_PATH:-}" ] && [ "${OMNIMATTE_NO_COMFYUI_SETUP:-0}" != 1 ] && omnimatte_fetch_host; then
    return 0
  fi
  cat >&2 <<MSG
EasyOmnimatte: no ComfyUI found.
  Looked at: ${candidates[*]}
  Fix: point COMFYUI_PATH at a ComfyUI checkout (the folder holding main.py), e.g.
      export COMFYUI_PATH=/path/to/ComfyUI
  or install this pack into ComfyUI/custom_nodes/, or put a ComfyUI checkout at ~/ComfyUI:
      git clone --depth 1 --branch $OMNIMATTE_COMFYUI_TAG $OMNIMATTE_COMFYUI_GIT ~/ComfyUI
  (Without COMFYUI_PATH these scripts clone it themselves into $OMNIMATTE_COMFYUI_CACHE; set
  OMNIMATTE_COMFYUI_GIT to a reachable mirror where that URL is not.)
MSG
  return 1
}

omnimatte_fetch_host() {
  # A fresh machine: shallow-clone the pinned tag into the cache, whole or not at all.
  local dest="$OMNIMATTE_COMFYUI_CACHE/$OMNIMATTE_COMFYUI_TAG"
  echo "EasyOmnimatte: no ComfyUI found; setting up ComfyUI $OMNIMATTE_COMFYUI_TAG from" \
       "$OMNIMATTE_COMFYUI_GIT in $dest (first run only)" >&2
  mkdir -p "$OMNIMATTE_COMFYUI_CACHE"
  rm -rf "$dest.partial"
  if ! git clone --quiet --depth 1 --branch "$OMNIMATTE_COMFYUI_TAG" "$OMNIMATTE_COMFYUI_GIT" "$dest.partial" \
       || ! _omnimatte_is_host "$dest.partial"; then
    rm -rf "$dest.partial"
    echo "EasyOmnimatte: could not fetch ComfyUI $OMNIMATTE_COMFYUI_TAG from $OMNIMATTE_COMFYUI_GIT" >&2
    return 1
  fi
  mv "$dest.partial" "$dest"
  COMFYUI_PATH="$dest"
  export COMFYUI_PATH
  echo "EasyOmnimatte: ComfyUI $OMNIMATTE_COMFYUI_TAG is at $COMFYUI_PATH (set COMFYUI_PATH to use another)" >&2
}

_omnimatte_pip() {
  # this machine's pip config names local indexes that may be absent: drop those warnings only
  "$OMNIMATTE_VENV/bin/python" -m pip "$@" 2> >(grep -v "^WARNING: Location '" >&2)
}

omnimatte_setup_venv() {
  local root="${OMNIMATTE_VENV_ROOT:-$HOME/.cache/easy-omnimatte/venvs}"
  local python="${OMNIMATTE_BASE_PYTHON:-python3}"
  local key
  key=$( { echo "$TORCH_TRIO"; "$python" --version 2>&1;
           cat "$COMFYUI_PATH/requirements.txt" "$OMNIMATTE_PACK_DIR/requirements.txt" \
               "$OMNIMATTE_PACK_DIR/requirements-dev.txt"; } | sha256sum | cut -c1-16)
  local venv="$root/$key"
  if [ ! -f "$venv/.complete" ]; then
    echo "EasyOmnimatte: creating the environment at $venv (first run only, a few minutes)" >&2
    rm -rf "$venv"
    mkdir -p "$root"
    "$python" -m venv "$venv"
    OMNIMATTE_VENV="$venv"
    _omnimatte_pip install -q --upgrade pip
    # torch first, pinned as a trio: the host's requirements then find it satisfied.
    _omnimatte_pip install -q $TORCH_TRIO
    _omnimatte_pip install -q $TORCH_TRIO -r "$COMFYUI_PATH/requirements.txt"
    _omnimatte_pip install -q $TORCH_TRIO -r "$OMNIMATTE_PACK_DIR/requirements.txt" \
        -r "$OMNIMATTE_PACK_DIR/requirements-dev.txt"
    touch "$venv/.complete"
  fi
  OMNIMATTE_PY="$venv/bin/python"
  export OMNIMATTE_PY
}

omnimatte_find_host
omnimatte_setup_venv
