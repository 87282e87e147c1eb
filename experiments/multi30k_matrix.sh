#!/usr/bin/env bash
# The Multi30k de-en results of issue 5 at the CPU budget of docs/translation_parsing.md: the "small"
# Transformer (6.0 M parameters, BPE 8,000), 3 epochs of batch 64 (1,362 updates), warm-up 400, the
# default Adam lr 5e-4 and label smoothing 0.1, the average of the last 2 epoch checkpoints, beam 4
# with length penalty 0.6; sacrebleu on test2016. 1 thread per run, fp32 as recorded. Records: results/translation.jsonl.
#   usage: experiments/multi30k_matrix.sh   (data: ../shared/data/multi30k or $MULTI30K_DIR;
#          $DELTAMIX: the command to run, default .venv/bin/deltamix)
# A longer budget or a subset: $EPOCHS (default 3), $AVERAGE_LAST (default 2), $WARMUP_STEPS
# (default 400), $LR_SCHEDULE (constant or inverse-sqrt, the authors' fairseq schedule; default
# constant) and $TRAIN_LIMIT (train on the first N pairs only: a low-resource setting, where the
# baseline overfits sooner; default all 29,000) change the recipe; the folder names each value that
# differs from these defaults
# (runs/multi30k/AUGMENT-small[-eEPOCHS][-avgN][-wuSTEPS][-inverse-sqrt][-nN]-seedN), so two recipes never share a folder
# (and the run refuses a folder started with other settings). $PARTNER_EXTENT=main gives the SeqMix
# runs (seqmix, seqmix-hard) the authors' partner extent (--partner-extent main; folder AUGMENT-main-...);
# the other members do not mix with a partner and keep their folders, so one baseline serves both. $AUGMENTS and $SEEDS pick settings, e.g.
# EPOCHS=8 AVERAGE_LAST=3 AUGMENTS="none seqmix" SEEDS=0. The default recipe of `deltamix seqmix
# translate`: EPOCHS=15 AVERAGE_LAST=5 WARMUP_STEPS=1000.
# Start one copy per core: the copies share one queue (each run is claimed with flock), baseline and
# SeqMix for seeds 0-2 first, then word dropout and SwitchOut. Finished runs (metrics.json) are
# skipped; an interrupted run resumes from its last checkpoint when a copy reaches it again.
source "$(dirname "$0")/queue_lib.sh"
data="${MULTI30K_DIR:-../shared/data/multi30k}"
epochs="${EPOCHS:-3}"
average_last="${AVERAGE_LAST:-2}"
warmup_steps="${WARMUP_STEPS:-400}"
lr_schedule="${LR_SCHEDULE:-constant}"
train_limit="${TRAIN_LIMIT:-}"
partner_extent="${PARTNER_EXTENT:-union}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
read -r -a augments <<< "${AUGMENTS:-none seqmix word-dropout switchout}"
budget=""  # the recipe values that differ from the defaults above, in the folder name
[ "$epochs" != 3 ] && budget+="-e$epochs"
[ "$average_last" != 2 ] && budget+="-avg$average_last"
[ "$warmup_steps" != 400 ] && budget+="-wu$warmup_steps"
[ "$lr_schedule" != constant ] && budget+="-$lr_schedule"
limit=()
if [ -n "$train_limit" ]; then budget+="-n$train_limit"; limit=(--train-limit "$train_limit"); fi
queue=()  # baseline and SeqMix for every seed first, then the other settings
for seed in "${seeds[@]}"; do
  for augment in "${augments[@]}"; do
    case "$augment" in none|seqmix) queue+=("$augment:$seed") ;; esac
  done
done
for seed in "${seeds[@]}"; do
  for augment in "${augments[@]}"; do
    case "$augment" in none|seqmix) ;; *) queue+=("$augment:$seed") ;; esac
  done
done
mkdir -p runs/multi30k
for entry in "${queue[@]}"; do
  IFS=: read -r augment seed <<< "$entry"
  name="$augment" extent=()
  case "$augment" in seqmix|seqmix-hard)
    extent=(--partner-extent "$partner_extent")  # explicit: the default may differ
        if [ "$partner_extent" != union ]; then name+="-$partner_extent"; fi ;;
  esac
  out="runs/multi30k/$name-small$budget-seed$seed"
  OMP_NUM_THREADS=1 run_once "$out" "$out/metrics.json" "multi30k $augment seed $seed" \
    "${deltamix[@]}" seqmix translate --dataset multi30k --data-dir "$data" \
    --augment "$augment" --seed "$seed" --epochs "$epochs" --warmup-steps "$warmup_steps" --average-last "$average_last" \
    --lr-schedule "$lr_schedule" "${limit[@]}" "${extent[@]}" --threads 1 --precision fp32 --output-dir "$out"
done
