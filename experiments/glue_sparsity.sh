#!/usr/bin/env bash
# The dev score vs target sparsity curve of issue 3 (0.1%, 0.25%, 1%; 0.5% is the main matrix's run and
# 100% its full fine-tuning): diff pruning runs that differ only in --target-sparsity share their first
# stage (L0, or full fine-tuning for the non-adaptive baseline), so each point here trains only the
# projection and the fixed-mask stage. The first stage comes from the matrix run
# $MATRIX_DIR/TASK/METHOD/seedS (default runs/glue; experiments/glue_matrix.sh keeps it) when that run
# kept it; otherwise the first point of the sweep trains it and keeps it for the others. Records go to
# results/glue.jsonl. Like the matrix, the points choose their epochs on dev (--select-on dev), so they
# can take the matrix runs' first stages; experiments/glue_tuned.sh holds the held-out-selected study.
#   usage: experiments/glue_sparsity.sh [TASK ...]   (default: mrpc rte; data: ../shared/data/glue or
#          $GLUE_DIR; $DELTAMIX: the command, default .venv/bin/deltamix; $METHODS (default: diffprune
#          diffprune-structured), $SEEDS (default 0), $SPARSITIES (default 0.001 0.0025 0.01),
#          $MASK_LRS: fixed-mask learning rates to sweep too, e.g. "5e-5 2e-4 1e-3" (default: the
#          command's; a point with one is run with --mask-lr into runs/glue-sparsity/.../tT-mLR))
# Start one copy per core: the copies share one queue (flock). A copy scans the queue for a point it can
# run now (not finished, not running elsewhere, its first stage trained); when none is left but some wait
# for a first stage another copy is training, it looks again every 10 s, so idle copies run a sweep's
# other points side by side as soon as its first stage is done. A point that fails is not tried again by
# the same copy, nor are the points waiting for its first stage.
source "$(dirname "$0")/queue_lib.sh"
data="${GLUE_DIR:-../shared/data/glue}"
tasks=("${@:-mrpc rte}")
read -r -a tasks <<< "${tasks[*]}"
read -r -a methods <<< "${METHODS:-diffprune diffprune-structured}"
read -r -a seeds <<< "${SEEDS:-0}"
read -r -a sparsities <<< "${SPARSITIES:-0.001 0.0025 0.01}"
read -r -a mask_lrs <<< "${MASK_LRS:-default}"
matrix_dir="${MATRIX_DIR:-runs/glue}"
points=()  # one sweep's points, first stage first: "SPARSITY MASK_LR"
for sparsity in "${sparsities[@]}"; do
  for mask_lr in "${mask_lrs[@]}"; do points+=("$sparsity $mask_lr"); done
done
point_dir() {  # point_dir SWEEP_DIR SPARSITY MASK_LR
  if [ "$3" = default ]; then echo "$1/t$2"; else echo "$1/t$2-m$3"; fi
}
first_stage() { case "$1" in diffprune-nonadaptive) echo full-ft ;; *) echo l0 ;; esac; }
mkdir -p runs/glue-sparsity
declare -A failed=()  # points that failed in this copy
while :; do
  ran=0 waiting=0
  for task in "${tasks[@]}"; do
    for seed in "${seeds[@]}"; do
      for method in "${methods[@]}"; do
        stage="$(first_stage "$method")"
        matrix="$matrix_dir/$task/$method/seed$seed"
        sweep="runs/glue-sparsity/$task/$method/seed$seed"
        first="$(point_dir "$sweep" ${points[0]})"
        for point in "${points[@]}"; do
          read -r sparsity mask_lr <<< "$point"
          out="$(point_dir "$sweep" "$sparsity" "$mask_lr")"
          lr=()
          [ "$mask_lr" = default ] || lr=(--mask-lr "$mask_lr")
          [ -f "$out/run_done.json" ] || [ -n "${failed[$out]:-}" ] && continue
          if [ -f "$matrix/$stage/stage_done.json" ]; then
            reuse=(--first-stage-from "$matrix")
          elif [ "$out" = "$first" ]; then
            reuse=(--keep-first-stage)  # this point trains the sweep's first stage and keeps it
          elif [ -f "$first/$stage/stage_done.json" ]; then
            reuse=(--first-stage-from "$first")
          elif [ -f "$first/run_done.json" ]; then
            reuse=(--keep-first-stage)  # the first point finished without keeping its stage: train one
          else
            [ -n "${failed[$first]:-}" ] || waiting=1  # in training elsewhere: look again
            continue
          fi
          run_once "$out" "$out/run_done.json" "$task $method seed $seed t $sparsity ${lr[*]} ${reuse[*]}" \
            "${deltamix[@]}" diffprune glue --task "$task" --method "$method" --seed "$seed" --select-on dev \
            --target-sparsity "$sparsity" "${lr[@]}" --data-dir "$data" --output-dir "$out" "${reuse[@]}" \
            || { echo "!! $task $method seed $seed t $sparsity failed"; failed[$out]=1; }
          [ "$ran_once" = 1 ] && ran=1
        done
      done
    done
  done
  [ "$ran" = 1 ] && continue
  [ "$waiting" = 1 ] || break
  sleep "${POLL_SECONDS:-10}"
done
