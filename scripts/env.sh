#!/usr/bin/env bash
# Shared setup for the README's two commands (sourced, not run).
#
# 1. Finds the ComfyUI host: $COMFYUI_PATH, else the ComfyUI this pack sits in
#    (ComfyUI/custom_nodes/<pack>), else ~/ComfyUI.
# 2. Creates or reuses a virtual environment outside the checkout, keyed by a hash of
#    every requirements file involved, so a clean clone does not reinstall ~6 GB.
#    It installs the matching torch trio, the host's requirements.txt and ours.
# Afterwards: $COMFYUI_PATH and $OMNIMATTE_PY are set.
set -euo pipefail

OMNIMATTE_PACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TORCH_TRIO="torch==2.11.0 torchvision==0.26.0 torchaudio==2.11.0"

omnimatte_find_host() {
  local candidates=()
  if [ -n "${COMFYUI_PATH:-}" ]; then
    candidates=("$COMFYUI_PATH")
  else
    local parent
    parent=$(dirname "$OMNIMATTE_PACK_DIR")
    [ "$(basename "$parent")" = "custom_nodes" ] && candidates+=("$(dirname "$parent")")
    candidates+=("$HOME/ComfyUI")
  fi
  local c
  for c in "${candidates[@]}"; do
    if [ -f "$c/main.py" ] && [ -d "$c/comfy" ]; then
      COMFYUI_PATH=$(cd "$c" && pwd)
      export COMFYUI_PATH
      return 0
    fi
  done
  cat >&2 <<MSG
EasyOmnimatte: no ComfyUI found.
  Looked at: ${candidates[*]}
  Fix: point COMFYUI_PATH at a ComfyUI checkout (the folder holding main.py), e.g.
      export COMFYUI_PATH=/path/to/ComfyUI
  or install this pack into ComfyUI/custom_nodes/, or put a ComfyUI checkout at ~/ComfyUI.
  (A source tree can be had with: git clone https://github.com/comfyanonymous/ComfyUI ~/ComfyUI)
MSG
  return 1
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
