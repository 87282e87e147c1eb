#!/usr/bin/env bash
# GLUE against tuned baselines (issue 33): every method, ours and the baselines, gets the same budget.
# Per task and method: three learning rates at the first seed, each run choosing its epochs on a slice
# held out from train (--select-on holdout); the rate of best held-out score is chosen (the choice of
# `deltamix report`: python -m deltamix.experiments.report.glue_tuned), then the other seeds of that rate run. The
# dev set plays no part in the choice; each run evaluates it once, on its chosen model. Records go to
# $RESULTS_DIR/glue.jsonl (default results/), where the report's tuned-against-tuned section reads them.
#   usage: experiments/glue_tuned.sh [TASK ...]   (default: rte mrpc stsb sst2; data: ../shared/data/glue
#          or $GLUE_DIR; $DELTAMIX: the command, default .venv/bin/deltamix; $PYTHON: the Python that
#          picks the rate, default .venv/bin/python; $METHODS / $SEEDS: a subset, the first seed tunes
#          (default: seeds 0 1 2 and the eight methods below); LRS_<method, - as _>: a method's rates,
#          e.g. LRS_full="2e-5 5e-5 1e-4"; $GLUE_ARGS: more flags for every run, e.g. a smoke test's
#          "--max-train-examples 64 --epochs 1"; $TUNED_DIR: the run folders' root, default runs/glue-tuned)
# Start one copy per core: the copies share one queue, each run claimed with flock; finished runs
# (run_done.json, or a record in $RESULTS_DIR/glue.jsonl naming the folder) are skipped and an interrupted one resumes from its last checkpoint when a copy
# reaches it again. A method's other seeds start once all its rates have finished. A copy that finds
# nothing to run while another copy holds a run looks again every $POLL_SECONDS (default 10), so the
# copies of a many-copy machine take the seeds as soon as a method's last rate is done. A run that
# fails is not tried again by the same copy (start the queue again to retry it).
source "$(dirname "$0")/queue_lib.sh"
data="${GLUE_DIR:-../shared/data/glue}"
read -r -a python <<< "${PYTHON:-.venv/bin/python}"
tasks=("${@:-rte mrpc stsb sst2}")
read -r -a tasks <<< "${tasks[*]}"
read -r -a methods <<< "${METHODS:-full diffprune diffprune-structured diffprune-nonadaptive bitfit last-layer lora shira}"
read -r -a seeds <<< "${SEEDS:-0 1 2}"
read -r -a extra <<< "${GLUE_ARGS:-}"
root="${TUNED_DIR:-runs/glue-tuned}"
results="${RESULTS_DIR:-results}"

rates() {  # the learning rates of a method: about 3x apart around its default for the embedded MiniLM
  local name="LRS_${1//-/_}"
  if [ -n "${!name:-}" ]; then echo "${!name}"; return; fi
  case "$1" in
    full|diffprune-nonadaptive|last-layer|diffprune|diffprune-structured) echo "3e-5 1e-4 3e-4" ;;
    bitfit) echo "3e-4 1e-3 3e-3" ;;
    lora|shira|supertuning) echo "1.5e-4 5e-4 1.5e-3" ;;
    *) echo "no learning rates for $1: set LRS_${1//-/_}" >&2; return 2 ;;
  esac
}

declare -A failed=() chosen_of=() said=()  # runs (and choices) failed in this copy; chosen rates

run() {  # run TASK METHOD LR SEED once (claimed with flock; skipped when finished or failed here)
  local task="$1" method="$2" lr="$3" seed="$4"
  local out="$root/$task/$method/lr$lr/seed$seed"
  recorded "$results/glue.jsonl" "$out" && return 0
  [ -n "${failed[$out]:-}" ] && return 0
  run_once "$out" "$out/run_done.json" "$task $method lr $lr seed $seed" \
    "${deltamix[@]}" diffprune glue --task "$task" --method "$method" --lr "$lr" --seed "$seed" \
    --select-on holdout --data-dir "$data" --output-dir "$out" --results-dir "$results" "${extra[@]}" \
    || { echo "!! $task $method lr $lr seed $seed failed"; failed[$out]=1; }
  if [ "$ran_once" = 1 ]; then
    ran=1
  elif [ ! -f "$out/run_done.json" ]; then
    waiting=1  # another copy holds it: look again
  fi
}

chosen_lr=""
choose() {  # choose TASK METHOD: sets chosen_lr to the rate of best held-out score once every rate is
  # finished, else returns 1; the choice is kept for the copy's later passes
  local task="$1" method="$2" lr lrs finished=() out chosen
  chosen_lr="${chosen_of[$task.$method]:-}"
  [ -n "$chosen_lr" ] && return 0
  [ -n "${failed[$task.$method]:-}" ] && return 1  # its chooser failed in this copy
  read -r -a lrs <<< "$(rates "$method")"
  for lr in "${lrs[@]}"; do
    out="$root/$task/$method/lr$lr/seed$tuning"
    if [ -f "$out/run_done.json" ] || recorded "$results/glue.jsonl" "$out"; then finished+=("$out"); fi
  done
  if [ "${#finished[@]}" -lt "${#lrs[@]}" ]; then
    [ -n "${said[$task.$method]:-}" ] \
      || echo "-- $task $method: ${#finished[@]} of ${#lrs[@]} rates finished; its seeds wait for the rest"
    said[$task.$method]=1
    return 1
  fi
  chosen="$("${python[@]}" -m deltamix.experiments.report.glue_tuned --records "$results/glue.jsonl" "${finished[@]}")" \
    || { echo "!! $task $method: no rate chosen"; failed[$task.$method]=1; return 1; }
  lr="$(basename "$(dirname "$chosen")")"
  chosen_lr="${lr#lr}"
  chosen_of[$task.$method]="$chosen_lr"
  echo "-- $task $method: lr $chosen_lr chosen on the held-out slice"
}

for method in "${methods[@]}"; do rates "$method" > /dev/null || exit 2; done
tuning="${seeds[0]}"
while :; do
  ran=0 waiting=0
  for task in "${tasks[@]}"; do
    for method in "${methods[@]}"; do  # the rates, at the tuning seed
      read -r -a lrs <<< "$(rates "$method")"
      for lr in "${lrs[@]}"; do run "$task" "$method" "$lr" "$tuning"; done
    done
    for method in "${methods[@]}"; do  # the chosen rate's other seeds
      choose "$task" "$method" || continue
      for seed in "${seeds[@]:1}"; do run "$task" "$method" "$chosen_lr" "$seed"; done
    done
  done
  [ "$ran" = 1 ] && continue
  [ "$waiting" = 1 ] || break
  sleep "${POLL_SECONDS:-10}"
done
echo "-- $(date +%H:%M:%S) nothing left that this copy can run (${#failed[@]} failed here)"
