#!/usr/bin/env bash
# The GLUE results matrix of issue 3 with the full recipe of `deltamix diffprune glue` (its defaults:
# 3 epochs for the baselines and the L0 stage, 5 fixed-mask epochs on the small tasks, batch 8,
# best dev checkpoint), on the embedded all-MiniLM-L6-v2: RTE, then MRPC, then STS-B, seeds 0-2,
# seven methods at the 0.5% budget. Records go to results/glue.jsonl. The matrix keeps the authors'
# selection on dev (--select-on dev; GLUE_ARGS="--select-on holdout" changes it), so a run added to it
# (a new seed, SST-2) means what its finished runs mean; experiments/glue_tuned.sh is the study with
# every method's rate chosen on a held-out slice of train.
#   usage: experiments/glue_matrix.sh [TASK ...]   (default: rte mrpc stsb; data: ../shared/data/glue
#          or $GLUE_DIR; $DELTAMIX: the command to run, default .venv/bin/deltamix;
#          $METHODS / $SEEDS: a subset, e.g. METHODS="diffprune diffprune-structured" SEEDS="0 1";
#          $GLUE_ARGS: more flags for every run, e.g. GLUE_ARGS="--save-steps 1000" for SST-2 on a CPU;
#          $MATRIX_DIR: the run folders' root, default runs/glue; another root runs the matrix again
#          beside the finished runs, e.g. after a default changed)
# Start one copy per core (or several per GPU): the copies share one queue, each run claimed with
# flock. Finished runs (run_done.json) are skipped; an interrupted run resumes from its last
# checkpoint when a copy reaches it again. Diff pruning runs keep their first stage
# (--keep-first-stage, ~180 MB for MiniLM), so experiments/glue_sparsity.sh can sweep the target
# sparsity from them without training that stage again.
source "$(dirname "$0")/queue_lib.sh"
data="${GLUE_DIR:-../shared/data/glue}"
tasks=("${@:-rte mrpc stsb}")
read -r -a tasks <<< "${tasks[*]}"
read -r -a methods <<< "${METHODS:-full diffprune diffprune-structured diffprune-nonadaptive bitfit lora shira}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
read -r -a extra <<< "${GLUE_ARGS:-}"
matrix="${MATRIX_DIR:-runs/glue}"
mkdir -p "$matrix"
for task in "${tasks[@]}"; do
  for seed in "${seeds[@]}"; do
    for method in "${methods[@]}"; do
      out="$matrix/$task/$method/seed$seed"
      keep=()
      case "$method" in diffprune*) keep=(--keep-first-stage) ;; esac
      run_once "$out" "$out/run_done.json" "$task $method seed $seed" \
        "${deltamix[@]}" diffprune glue --task "$task" --method "$method" --seed "$seed" \
        --data-dir "$data" --output-dir "$out" --select-on dev "${keep[@]}" "${extra[@]}" \
        || echo "!! $task $method seed $seed failed"
    done
  done
done
