#!/usr/bin/env bash
# The dev score vs target sparsity curve of issue 3 (0.1%, 0.25%, 1%; 0.5% is the main matrix's run and
# 100% its full fine-tuning): diff pruning runs that differ only in --target-sparsity share their first
# stage (L0, or full fine-tuning for the non-adaptive baseline), so each point here trains only the
# projection and the fixed-mask stage. The first stage comes from the matrix run
# runs/glue/TASK/METHOD/seedS (experiments/glue_matrix.sh keeps it) when that run kept it; otherwise the
# first point of the sweep trains it and keeps it for the others. Records go to results/glue.jsonl.
#   usage: experiments/glue_sparsity.sh [TASK ...]   (default: mrpc rte; data: ../shared/data/glue or
#          $GLUE_DIR; $DELTAMIX: the command, default .venv/bin/deltamix; $METHODS (default: diffprune
#          diffprune-structured), $SEEDS (default 0), $SPARSITIES (default 0.001 0.0025 0.01))
# Start one copy per core: the copies share one queue (flock). A copy skips a point whose first stage
# another copy is still training; in its second pass it waits for that stage (while the copy training it
# holds its lock), so idle copies run a sweep's other points side by side once its first stage is done.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${GLUE_DIR:-../shared/data/glue}"
read -r -a deltamix <<< "${DELTAMIX:-.venv/bin/deltamix}"
tasks=("${@:-mrpc rte}")
read -r -a tasks <<< "${tasks[*]}"
read -r -a methods <<< "${METHODS:-diffprune diffprune-structured}"
read -r -a seeds <<< "${SEEDS:-0}"
read -r -a sparsities <<< "${SPARSITIES:-0.001 0.0025 0.01}"
first_stage() { case "$1" in diffprune-nonadaptive) echo full-ft ;; *) echo l0 ;; esac; }
mkdir -p runs/glue-sparsity
for pass in 1 2; do  # pass 2 takes the points skipped while their source was in training
  for task in "${tasks[@]}"; do
    for seed in "${seeds[@]}"; do
      for method in "${methods[@]}"; do
        stage="$(first_stage "$method")"
        source="runs/glue/$task/$method/seed$seed"
        [ -f "$source/$stage/stage_done.json" ] || source=""
        for sparsity in "${sparsities[@]}"; do
          out="runs/glue-sparsity/$task/$method/seed$seed/t$sparsity"
          [ -f "$out/run_done.json" ] && continue
          mkdir -p "$(dirname "$out")"
          exec {lock}> "$out.lock"
          if ! flock -n "$lock"; then exec {lock}>&-; continue; fi  # another copy is running it
          reuse=(--keep-first-stage)
          if [ -n "$source" ]; then
            reuse=(--first-stage-from "$source")
          elif [ "$sparsity" != "${sparsities[0]}" ]; then
            source="runs/glue-sparsity/$task/$method/seed$seed/t${sparsities[0]}"
            if [ "$pass" = 2 ]; then  # wait while the copy training it is alive (holds its lock)
              exec {first}> "$source.lock"
              until [ -f "$source/$stage/stage_done.json" ] || flock -n "$first"; do sleep 10; done
              exec {first}>&-
            fi
            if [ ! -f "$source/$stage/stage_done.json" ]; then  # still in training elsewhere, or failed
              source=""; exec {lock}>&-; continue
            fi
            reuse=(--first-stage-from "$source")
          fi
          if [ ! -f "$out/run_done.json" ]; then
            echo "== $(date +%H:%M:%S) $task $method seed $seed t $sparsity ${reuse[*]}"
            "${deltamix[@]}" diffprune glue --task "$task" --method "$method" --seed "$seed" \
              --target-sparsity "$sparsity" --data-dir "$data" --output-dir "$out" "${reuse[@]}" \
              || echo "!! $task $method seed $seed t $sparsity failed"
          fi
          if [ -z "$source" ] && [ -f "$out/$stage/stage_done.json" ]; then
            source="$out"  # this point trained the first stage and kept it: the others take it
          fi
          exec {lock}>&-
        done
      done
    done
  done
done
