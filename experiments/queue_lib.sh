# What every experiment queue shares. A queue script starts with
#   source "$(dirname "$0")/queue_lib.sh"
# which turns on strict mode, moves to the project root, reads $DELTAMIX (the command to run, default
# .venv/bin/deltamix; words split, so "env X=1 deltamix" works) into the array `deltamix`, and defines
# run_once. Start one copy of a queue per core: the copies share it through run_once's locks.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
read -r -a deltamix <<< "${DELTAMIX:-.venv/bin/deltamix}"

# run_once OUT MARKER LABEL COMMAND...
#   Run COMMAND once for run folder OUT: skipped when the file MARKER exists (what the run writes when
#   finished) or when another copy holds OUT.lock; prints "== HH:MM:SS LABEL" when it starts.
#   Returns COMMAND's status (0 when skipped), so a caller may go on after a failure with
#   `run_once ... || echo "!! LABEL failed"`; sets ran_once=1 when it ran COMMAND, else 0.
ran_once=0
run_once() {
  local out="$1" marker="$2" label="$3" status=0 lock
  shift 3
  ran_once=0
  [ -f "$marker" ] && return 0
  mkdir -p "$(dirname "$out")"
  exec {lock}> "$out.lock"
  if ! flock -n "$lock"; then exec {lock}>&-; return 0; fi  # another copy is running it
  if [ ! -f "$marker" ]; then
    echo "== $(date +%H:%M:%S) $label"
    ran_once=1
    "$@" || status=$?
  fi
  exec {lock}>&-
  return "$status"
}

# recorded RESULTS OUT
#   True when the records file RESULTS already holds a run whose command wrote to OUT: a queue skips
#   it even when the run folder is gone (a fresh clone keeps results/, not runs/).
recorded() {
  local results="$1" out="$2"
  [ -f "$results" ] && grep -qF -e "--output-dir $out " -e "--output-dir $out\"" -- "$results"
}
