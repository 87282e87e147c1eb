#!/usr/bin/env bash
# Run the GLUE runs listed in a queue file, one after another; start one copy per core and the copies
# share the queue (each entry claimed with flock, finished ones skipped), as glue_matrix.sh does for
# the main matrix. For one-off comparisons (L0 settings, seeds) whose runs are not a full matrix.
#   usage: experiments/glue_queue.sh QUEUE_FILE
#   A queue line is `NAME|ARGUMENTS OF deltamix diffprune glue` (blank lines and # comments skipped);
#   every run gets --keep-first-stage (diff pruning) and --data-dir (../shared/data/glue or $GLUE_DIR).
#   $DELTAMIX: the command to run, default .venv/bin/deltamix. Claims and done markers go to
#   runs/queue/<queue name>/; an interrupted run resumes from its last checkpoint when a copy reaches
#   it again (the run folder is the --output-dir its line names).
source "$(dirname "$0")/queue_lib.sh"
queue="${1:?usage: experiments/glue_queue.sh QUEUE_FILE}"
[ -f "$queue" ] || { echo "no such queue file: $queue" >&2; exit 2; }
data="${GLUE_DIR:-../shared/data/glue}"
run_and_mark() {  # run_and_mark MARKER COMMAND...: run COMMAND; touch MARKER when it succeeds
  local marker="$1"
  shift
  "$@" && touch "$marker"
}
state="runs/queue/$(basename "$queue" .txt)"
mkdir -p "$state"
while IFS='|' read -r name args; do
  case "$name" in ''|'#'*) continue ;; esac
  read -r -a arguments <<< "$args"
  keep=()
  case " $args " in *" --method diffprune"*) keep=(--keep-first-stage) ;; esac
  # --select-on dev first: the comparisons pair runs with the matrix's (a line's own --select-on wins)
  run_once "$state/$name" "$state/$name.done" "$name" \
    run_and_mark "$state/$name.done" "${deltamix[@]}" diffprune glue --select-on dev "${arguments[@]}" \
    "${keep[@]}" --data-dir "$data" || echo "!! $name failed"
done < "$queue"
