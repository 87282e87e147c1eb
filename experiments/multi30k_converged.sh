#!/usr/bin/env bash
# Multi30k de-en on all 29,000 training pairs, trained to convergence: the authors' fairseq recipe
# scaled to Multi30k's size. Token batches of 4,096 tokens (the authors: 3,072 x 3 updates x 4 GPUs on
# IWSLT, ~6x Multi30k), Adam lr 7e-4 with an inverse-sqrt schedule after 1,000 warm-up updates (the
# authors' 8,000 over ~4x as many updates per epoch), label smoothing 0.1, dropout 0.3 (fairseq's
# small-data Transformer), early stopping when the validation loss has not improved for 5 epochs,
# capped at 60 epochs, the average of the last 5 epoch checkpoints, beam 4, length penalty 0.6; SeqMix
# with the authors' partner extent (main). Precision: auto (bf16 on CPUs that have it), 1 thread per
# run. Records: results/translation.jsonl.
#   usage: experiments/multi30k_converged.sh   (data: ../shared/data/multi30k or $MULTI30K_DIR;
#          $DELTAMIX: the command to run, default .venv/bin/deltamix; $SEEDS, default "0 1 2")
# Order: none and seqmix for every seed (the claim), then word-dropout, switchout and seqmix-hard on
# seed 0 (the family's table). A run takes hours on one CPU thread: start one copy per core; the
# copies share the queue (flock). Runs resume from their last epoch when the script runs again, so
# the queue spans sessions.
source "$(dirname "$0")/queue_lib.sh"
# The recorded runs trained in bf16 (--precision auto on a CPU with native bf16); on other hardware
# auto gives fp32, and a matrix with both would compare precisions, not methods.
python="${PYTHON:-.venv/bin/python}"
resolved="$("$python" -c 'from deltamix.core.precision import resolve_precision; print(resolve_precision("auto"))')"
if [ "$resolved" != bf16 ]; then
  echo "multi30k_converged.sh: --precision auto gives $resolved here; the queue's records are bf16." >&2
  echo "Run it where the CPU has avx512_bf16 or amx_bf16, or on a CUDA GPU with bf16." >&2
  exit 3
fi
data="${MULTI30K_DIR:-../shared/data/multi30k}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
queue=()
for seed in "${seeds[@]}"; do queue+=("none:$seed" "seqmix:$seed"); done
queue+=("word-dropout:${seeds[0]}" "switchout:${seeds[0]}" "seqmix-hard:${seeds[0]}")
mkdir -p runs/multi30k-converged
for entry in "${queue[@]}"; do
  IFS=: read -r augment seed <<< "$entry"
  out="runs/multi30k-converged/$augment-seed$seed"
  recorded results/translation.jsonl "$out" && continue
  OMP_NUM_THREADS=1 run_once "$out" "$out/metrics.json" "multi30k converged $augment seed $seed" \
    "${deltamix[@]}" seqmix translate --dataset multi30k --data-dir "$data" \
    --augment "$augment" --partner-extent main --seed "$seed" --epochs 60 --patience 5 \
    --max-tokens 4096 --lr 7e-4 --warmup-steps 1000 --lr-schedule inverse-sqrt --label-smoothing 0.1 \
    --dropout 0.3 --average-last 5 --beam-size 4 --length-penalty 0.6 --threads 1 --output-dir "$out"
done
