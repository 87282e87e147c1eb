#!/usr/bin/env bash
# The GeoQuery results of issue 5: baseline vs SeqMix, seeds 0-2, at the default budget of
# `deltamix seqmix parse` (the SCAN LSTM with attention and copy, 100 epochs, batch 32, greedy
# decoding, exact match of the logical form; 1 thread per run, fp32 as recorded). Finished runs are skipped (their
# folder holds metrics.json), interrupted ones resume. Records go to results/parsing.jsonl.
#   usage: experiments/geoquery_matrix.sh [SPLIT ...]   (default: query question; data: ../shared/data
#          or $GEOQUERY_DIR; $DELTAMIX: the command to run, default .venv/bin/deltamix)
# $SEEDS and $AUGMENTS pick settings (default "0 1 2" and "none seqmix"); $PARTNER_EXTENT=main gives
# the SeqMix runs the authors' partner extent (--partner-extent main; folder seqmix-main-lstm-seedN),
# the baseline keeps its folder. Runs one at a time; start one copy per split to use two cores.
source "$(dirname "$0")/queue_lib.sh"
data="${GEOQUERY_DIR:-../shared/data/geoquery}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
read -r -a augments <<< "${AUGMENTS:-none seqmix}"
partner_extent="${PARTNER_EXTENT:-union}"
splits=("${@:-query question}")
read -r -a splits <<< "${splits[*]}"
for seed in "${seeds[@]}"; do
  for split in "${splits[@]}"; do
    for augment in "${augments[@]}"; do
      name="$augment" extent=()
      case "$augment" in seqmix|seqmix-hard)
        extent=(--partner-extent "$partner_extent")  # explicit: the default may differ
        if [ "$partner_extent" != union ]; then name+="-$partner_extent"; fi ;;
      esac
      out="runs/geoquery/$split-logic/$name-lstm-seed$seed"
      [ -f "$out/metrics.json" ] && continue
      echo "== $(date +%H:%M:%S) $split $name seed $seed"
      OMP_NUM_THREADS=1 "${deltamix[@]}" seqmix parse --split "$split" --form logic \
        --data-dir "$data" --augment "$augment" --seed "$seed" "${extent[@]}" --output-dir "$out" --threads 1 --precision fp32
    done
  done
done
