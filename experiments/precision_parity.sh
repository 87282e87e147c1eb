#!/usr/bin/env bash
# bf16 against fp32 at the same budget, 3 seeds each, for the recipes whose --precision auto default
# depends on it: the SCAN LSTM (addprim_jump, geca+seqmix, 1500 steps), GeoQuery (query split, SeqMix,
# 100 epochs), MiniLM on GLUE ($GLUE_TASKS, default "mrpc stsb rte", with each method of $GLUE_METHODS,
# default "full diffprune diffprune-structured": full fine-tuning and both stages of diff pruning, whose
# bf16 path splits each gated linear's base and diff products; on one CPU thread a full fine-tuning run
# takes 10-30 minutes, a diff pruning run about twice that) and Multi30k transformer-small (train[:5000], SeqMix, 10 epochs,
# average of the last 3), in that order. 1 thread per run, so the two precisions' times compare. Records go to results/precision/{scan,parsing,translation,glue}.jsonl, apart from
# the main tables; `python experiments/precision_report.py` summarises them.
#   usage: experiments/precision_parity.sh [GROUP ...]   (groups: scan geoquery glue multi30k; default all)
# Start one copy per core: the copies share one queue (each run is claimed with flock). Finished runs
# (metrics.json; run_done.json for GLUE) are skipped; an interrupted run resumes when a copy reaches it again.
# $DATA_DIR: the folder of glue/, geoquery/ and multi30k/ (default ../shared/data); $DELTAMIX: the
# command (default .venv/bin/deltamix); $SEEDS (default "0 1 2").
source "$(dirname "$0")/queue_lib.sh"
data="${DATA_DIR:-../shared/data}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
read -r -a glue_tasks <<< "${GLUE_TASKS:-mrpc stsb rte}"
read -r -a glue_methods <<< "${GLUE_METHODS:-full diffprune diffprune-structured}"
groups=("${@:-scan geoquery glue multi30k}")
read -r -a groups <<< "${groups[*]}"
results=results/precision
runs=runs/precision
common=(--threads 1 --results-dir "$results")
union=(--partner-extent union)  # the recorded runs' partner extent, explicit since the default became main

run_one() {  # GROUP NAME PRECISION SEED: the command of one run
  local group=$1 name=$2 precision=$3 seed=$4 out=$5
  case "$group" in
    glue) local task=${name%%.*} method=full  # NAME: TASK (full fine-tuning) or TASK.METHOD
          [ "$name" != "$task" ] && method=${name#*.}
          "${deltamix[@]}" diffprune glue --task "$task" --method "$method" --data-dir "$data/glue" \
            --seed "$seed" --precision "$precision" --output-dir "$out" "${common[@]}" ;;
    scan) "${deltamix[@]}" seqmix scan --split addprim_jump --augment geca+seqmix --max-steps 1500 "${union[@]}" \
            --seed "$seed" --precision "$precision" --output-dir "$out" "${common[@]}" ;;
    geoquery) "${deltamix[@]}" seqmix parse --split query --form logic --data-dir "$data/geoquery" \
            --augment seqmix "${union[@]}" --seed "$seed" --precision "$precision" --output-dir "$out" "${common[@]}" ;;
    multi30k) "${deltamix[@]}" seqmix translate --dataset multi30k --data-dir "$data/multi30k" \
            --train-limit 5000 --epochs 10 --average-last 3 --warmup-steps 400 --augment seqmix "${union[@]}" \
            --seed "$seed" --precision "$precision" --output-dir "$out" "${common[@]}" ;;
  esac
}

queue=()
for group in "${groups[@]}"; do
  case "$group" in glue) names=()  # full fine-tuning keeps the folder name of its earlier runs: TASK
      for task in "${glue_tasks[@]}"; do for method in "${glue_methods[@]}"; do
        if [ "$method" = full ]; then names+=("$task"); else names+=("$task.$method"); fi; done; done ;; scan) names=(jump) ;; geoquery) names=(query) ;; multi30k) names=(n5000) ;;
    *) echo "unknown group $group (glue scan geoquery multi30k)" >&2; exit 2 ;; esac
  for seed in "${seeds[@]}"; do
    for name in "${names[@]}"; do
      for precision in fp32 bf16; do queue+=("$group:$name:$precision:$seed"); done
    done
  done
done
declare -A record_file=([glue]=glue.jsonl [scan]=scan.jsonl [geoquery]=parsing.jsonl [multi30k]=translation.jsonl)
mkdir -p "$runs"
for entry in "${queue[@]}"; do
  IFS=: read -r group name precision seed <<< "$entry"
  out="$runs/$group/$name-$precision-seed$seed"
  recorded "$results/${record_file[$group]}" "$out" && continue
  done_file="$out/metrics.json"
  [ "$group" = glue ] && done_file="$out/run_done.json"  # a GLUE run writes metrics.json before its record
  OMP_NUM_THREADS=1 run_once "$out" "$done_file" "$group $name $precision seed $seed" \
    run_one "$group" "$name" "$precision" "$seed" "$out"
done
