#!/usr/bin/env bash
# Token batches against sentence batches at the same budget (issue 31): the SCAN LSTM recipe
# (addprim_jump, GECA + SeqMix, the papers' model) for 3 epochs with batches of 32 commands and with
# token-budget batches of at most $MAX_TOKENS (default 2048) padded tokens, seeds 0-2, fp32 on one
# thread, every other setting the default. Same data, same epochs, same learning rate: what changes is
# how the examples are cut into batches (token batches: fewer, larger updates). Tokens per second of
# the two are measured apart, by benchmarks/bench_throughput.py (task train-throughput-scan).
# Records: results/token-batches/scan.jsonl; summary: python experiments/token_batch_report.py.
#   usage: experiments/token_batches.sh   ($DELTAMIX: the command, default .venv/bin/deltamix;
#          $SEEDS, default "0 1 2"; $EPOCHS, default 3; $MAX_TOKENS, default 2048)
# Start one copy per core; the copies share the queue (flock). Finished runs are skipped, interrupted
# ones resume from their last checkpoint.
source "$(dirname "$0")/queue_lib.sh"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
epochs="${EPOCHS:-3}"
max_tokens="${MAX_TOKENS:-2048}"
results=results/token-batches
mkdir -p "$results" runs/token-batches
for seed in "${seeds[@]}"; do
  for batching in sentences "tokens$max_tokens"; do
    out="runs/token-batches/addprim_jump-$epochs-epochs/$batching-seed$seed"
    recorded "$results/scan.jsonl" "$out" && continue
    cut=(--batch-size 32)
    [ "$batching" = sentences ] || cut=(--max-tokens "$max_tokens")
    OMP_NUM_THREADS=1 run_once "$out" "$out/metrics.json" "scan $batching seed $seed ($epochs epochs)" \
      "${deltamix[@]}" seqmix scan --split addprim_jump --augment geca+seqmix --seed "$seed" \
      --epochs "$epochs" "${cut[@]}" --precision fp32 --threads 1 --output-dir "$out" --results-dir "$results" \
      || echo "!! scan $batching seed $seed failed"
  done
done
echo "-- $(date +%H:%M:%S) nothing left to run"
