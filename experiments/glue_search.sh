#!/usr/bin/env bash
# The learning-rate search of results/notes.md for all-MiniLM-L6-v2, at a short budget that fits this
# machine: STS-B (short sentence pairs, a continuous metric), seed 0, 1 epoch per stage
# (`--epochs 1 --mask-epochs 1`), 1 thread per run. Records go to results/glue-search/glue.jsonl
# (kept apart from the results table; `deltamix report` shows them as the search table).
#   usage: experiments/glue_search.sh [TASK [METHOD:LR[:FLAGS] ...]]   (default: stsb and the list
#          below; FLAGS: extra options joined by commas, e.g. diffprune:1e-4:--l0-lambda=1e-5;
#          data: ../shared/data/glue or $GLUE_DIR)
# Finished runs (run_done.json) are skipped.
source "$(dirname "$0")/queue_lib.sh"
task="${1:-stsb}"
shift || true
data="${GLUE_DIR:-../shared/data/glue}"
runs=(  # method:lr
  full:2e-5 diffprune:1e-5 diffprune:1e-4 diffprune:1e-3 bitfit:1e-3 lora:5e-4 full:1e-4
)
[ $# -gt 0 ] && runs=("$@")
for entry in "${runs[@]}"; do
  IFS=: read -r method lr flags <<< "$entry"
  IFS=, read -r -a extra <<< "${flags:-}"
  slug="${flags//[^A-Za-z0-9.=-]/}"
  out="runs/glue-search/$task/$method-lr$lr${slug:+-$slug}/seed0"
  [ -f "$out/run_done.json" ] && continue
  echo "== $(date +%H:%M:%S) $task $method lr $lr ${extra[*]:-}"
  OMP_NUM_THREADS=1 "${deltamix[@]}" diffprune glue --task "$task" --method "$method" --lr "$lr" \
    --epochs 1 --mask-epochs 1 --seed 0 --data-dir "$data" --output-dir "$out" \
    --results-dir results/glue-search "${extra[@]}"
done
