#!/usr/bin/env bash
# SCAN at a budget where GECA reproduces: 6,000 steps of batch 32 (4x the default), the papers' LSTM,
# none / seqmix / geca / geca+seqmix on addprim_jump and template_around_right, seeds 0-2; SeqMix with
# the authors' partner extent (main). Precision auto (bf16 on CPUs that have it), 1 thread per run.
# Records: results/scan.jsonl.
#   usage: experiments/scan_long.sh   ($DELTAMIX: the command to run, default .venv/bin/deltamix;
#          $SEEDS, default "0 1 2"; $STEPS, default 6000)
# Order: geca and geca+seqmix first (the combined claim), then none and seqmix. Start one copy per
# core; the copies share the queue (flock). Finished runs are skipped, interrupted ones resume from
# their last checkpoint (every 500 steps), so the queue spans sessions.
source "$(dirname "$0")/queue_lib.sh"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
steps="${STEPS:-6000}"
queue=()
for augments in "geca geca+seqmix" "none seqmix"; do
  for seed in "${seeds[@]}"; do
    for split in addprim_jump template_around_right; do
      for augment in $augments; do queue+=("$split:$augment:$seed"); done
    done
  done
done
mkdir -p "runs/scan-$steps"
for entry in "${queue[@]}"; do
  IFS=: read -r split augment seed <<< "$entry"
  out="runs/scan-$steps/$split/$augment-seed$seed"
  recorded results/scan.jsonl "$out" && continue
  extent=()  # the partner extent applies to the members that mix two examples
  [[ "$augment" == *seqmix* ]] && extent=(--partner-extent main)
  OMP_NUM_THREADS=1 run_once "$out" "$out/metrics.json" "scan $split $augment seed $seed ($steps steps)" \
    "${deltamix[@]}" seqmix scan --split "$split" --augment "$augment" --seed "$seed" \
    --max-steps "$steps" "${extent[@]}" --threads 1 --output-dir "$out"
done
