#!/usr/bin/env bash
# The SCAN results matrix of issue 4: every augmentation x split x seed at the default budget of
# `deltamix seqmix scan` (1500 steps of batch 32, the paper's LSTM, 1 thread per run, fp32 as recorded).
# Finished runs are skipped (their folder holds metrics.json), interrupted ones resume.
#   usage: experiments/scan_matrix.sh [SPLIT ...]      (default: both splits of the paper)
# Runs one at a time; start one copy per split to use two cores. Records go to results/scan.jsonl.
source "$(dirname "$0")/queue_lib.sh"
splits=("${@:-addprim_jump template_around_right}")
read -r -a splits <<< "${splits[*]}"
augments=(none word-dropout switchout seqmix seqmix-hard geca geca+seqmix)
for seed in 0 1 2; do
  for split in "${splits[@]}"; do
    for augment in "${augments[@]}"; do
      out="runs/scan/$split/$augment-lstm-seed$seed"
      [ -f "$out/metrics.json" ] && continue
      echo "== $(date +%H:%M:%S) $split $augment seed $seed"
      extent=()  # the recorded runs' partner extent, explicit since the default became main
      [[ "$augment" == *seqmix* ]] && extent=(--partner-extent union)
      OMP_NUM_THREADS=1 "${deltamix[@]}" seqmix scan --split "$split" --augment "$augment" \
        --seed "$seed" "${extent[@]}" --output-dir "$out" --threads 1 --precision fp32
    done
  done
done
