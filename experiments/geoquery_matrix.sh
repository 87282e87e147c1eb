#!/usr/bin/env bash
# The GeoQuery results of issue 5: baseline vs SeqMix, seeds 0-2, at the default budget of
# `deltamix seqmix parse` (the SCAN LSTM with attention and copy, 100 epochs, batch 32, greedy
# decoding, exact match of the logical form; 1 thread per run). Finished runs are skipped (their
# folder holds metrics.json), interrupted ones resume. Records go to results/parsing.jsonl.
#   usage: experiments/geoquery_matrix.sh [SPLIT ...]   (default: query question; data: ../shared/data)
# Runs one at a time; start one copy per split to use two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${GEOQUERY_DIR:-../shared/data/geoquery}"
splits=("${@:-query question}")
read -r -a splits <<< "${splits[*]}"
for seed in 0 1 2; do
  for split in "${splits[@]}"; do
    for augment in none seqmix; do
      out="runs/geoquery/$split-logic/$augment-lstm-seed$seed"
      [ -f "$out/metrics.json" ] && continue
      echo "== $(date +%H:%M:%S) $split $augment seed $seed"
      OMP_NUM_THREADS=1 .venv/bin/deltamix seqmix parse --split "$split" --form logic \
        --data-dir "$data" --augment "$augment" --seed "$seed" --output-dir "$out" --threads 1
    done
  done
done
