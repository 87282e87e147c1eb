"""The experiment queues (experiments/*_matrix.sh): which runs they start, in which order, where.

Each script is copied into a temporary project so the run folders it makes land there, and
``$DELTAMIX`` points at a fake command that logs its arguments and writes the file that marks a run
finished, so the queue logic is checked without training anything.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from queue_fakes import FAKE_DELTAMIX, REPO, fake_python, queue_project, run_queue


def _value(args: list[str], option: str) -> str:
    return args[args.index(option) + 1]


def _write_marker(path: Path) -> None:
    """Writes the JSON file that marks a stage or run finished (``.../stage_done.json``), with its folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")


# Appended to the fake command: a run given --keep-first-stage leaves its L0 stage kept, as deltamix does.
KEEPS_FIRST_STAGE = (
    'case "$(tail -n 1 "$(dirname "$0")/calls.log")" in *--keep-first-stage*) '
    'mkdir -p "$out/l0"; echo {} > "$out/l0/stage_done.json";; esac\n'
)


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_matrix_subset_runs_each_chosen_run_once(tmp_path):
    script, fake = queue_project(tmp_path, "glue_matrix.sh")
    calls = run_queue(script, fake, METHODS="diffprune bitfit", SEEDS="0 2", GLUE_DIR="data")
    started = [(_value(c, "--task"), _value(c, "--method"), _value(c, "--seed")) for c in calls]
    assert started == [
        (task, method, seed)
        for task in ("rte", "mrpc", "stsb")
        for seed in ("0", "2")
        for method in ("diffprune", "bitfit")
    ]
    calls = run_queue(script, fake, METHODS="diffprune", SEEDS="1")
    assert [_value(c, "--output-dir") for c in calls] == [
        f"runs/glue/{task}/diffprune/seed1" for task in ("rte", "mrpc", "stsb")
    ]
    # finished runs are skipped: running the same subset again starts nothing
    assert run_queue(script, fake, METHODS="diffprune", SEEDS="1") == []
    # another root runs them again beside the finished ones (after a default changed)
    calls = run_queue(script, fake, METHODS="diffprune", SEEDS="1", MATRIX_DIR="runs/glue-new")
    assert [_value(c, "--output-dir") for c in calls] == [
        f"runs/glue-new/{task}/diffprune/seed1" for task in ("rte", "mrpc", "stsb")
    ]


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_matrix_task_arguments_and_data_dir(tmp_path):
    script, fake = queue_project(tmp_path, "glue_matrix.sh")
    calls = run_queue(script, fake, METHODS="full", SEEDS="0", GLUE_DIR="my/glue")
    assert [(_value(c, "--task"), _value(c, "--data-dir")) for c in calls] == [
        ("rte", "my/glue"),
        ("mrpc", "my/glue"),
        ("stsb", "my/glue"),
    ]
    log = fake.parent / "calls.log"
    log.unlink(missing_ok=True)
    subprocess.run(
        ["bash", str(script), "sst2"],
        env={**os.environ, "DELTAMIX": str(fake), "METHODS": "lora", "SEEDS": "0"},
        check=True,
        capture_output=True,
    )
    assert [_value(c.split(), "--output-dir") for c in log.read_text().splitlines()] == [
        "runs/glue/sst2/lora/seed0"
    ]


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_multi30k_matrix_default_queue_and_longer_budget(tmp_path):
    script, fake = queue_project(tmp_path, "multi30k_matrix.sh")
    calls = run_queue(script, fake, SEEDS="0 1")
    assert [(_value(c, "--augment"), _value(c, "--seed")) for c in calls] == [
        ("none", "0"),
        ("seqmix", "0"),
        ("none", "1"),
        ("seqmix", "1"),
        ("word-dropout", "0"),
        ("switchout", "0"),
        ("word-dropout", "1"),
        ("switchout", "1"),
    ]
    assert {(_value(c, "--epochs"), _value(c, "--average-last")) for c in calls} == {("3", "2")}
    assert _value(calls[0], "--output-dir") == "runs/multi30k/none-small-seed0"

    longer = run_queue(script, fake, EPOCHS="8", AVERAGE_LAST="3", AUGMENTS="seqmix none", SEEDS="0")
    assert [_value(c, "--output-dir") for c in longer] == [
        "runs/multi30k/seqmix-small-e8-avg3-seed0",
        "runs/multi30k/none-small-e8-avg3-seed0",
    ]
    assert {
        (_value(c, "--epochs"), _value(c, "--average-last"), _value(c, "--warmup-steps")) for c in longer
    } == {("8", "3", "400")}
    recipe = run_queue(
        script, fake, EPOCHS="15", AVERAGE_LAST="5", WARMUP_STEPS="1000", AUGMENTS="none", SEEDS="0"
    )
    assert [(_value(c, "--output-dir"), _value(c, "--warmup-steps")) for c in recipe] == [
        ("runs/multi30k/none-small-e15-avg5-wu1000-seed0", "1000")
    ]
    # the same epochs with another average is another folder, not the finished e8-avg3 run
    other_average = run_queue(script, fake, EPOCHS="8", AVERAGE_LAST="5", AUGMENTS="none", SEEDS="0")
    assert [_value(c, "--output-dir") for c in other_average] == ["runs/multi30k/none-small-e8-avg5-seed0"]
    fairseq = run_queue(
        script, fake, WARMUP_STEPS="1000", LR_SCHEDULE="inverse-sqrt", AUGMENTS="none", SEEDS="0"
    )
    assert [(_value(c, "--output-dir"), _value(c, "--lr-schedule")) for c in fairseq] == [
        ("runs/multi30k/none-small-wu1000-inverse-sqrt-seed0", "inverse-sqrt")
    ]
    assert {_value(c, "--lr-schedule") for c in calls} == {"constant"}
    assert not any("--train-limit" in c for c in calls)
    small = run_queue(script, fake, EPOCHS="40", TRAIN_LIMIT="5000", AUGMENTS="none", SEEDS="0")
    assert [(_value(c, "--output-dir"), _value(c, "--train-limit")) for c in small] == [
        ("runs/multi30k/none-small-e40-n5000-seed0", "5000")
    ]
    # the authors' partner extent: its own SeqMix folders; the baseline's folder is the usual one
    authors = run_queue(script, fake, PARTNER_EXTENT="main", AUGMENTS="none seqmix", SEEDS="2")
    extents = [
        (_value(c, "--output-dir"), "--partner-extent" in c and _value(c, "--partner-extent"))
        for c in authors
    ]
    assert extents == [
        ("runs/multi30k/none-small-seed2", False),
        ("runs/multi30k/seqmix-main-small-seed2", "main"),
    ]
    # union, the queue's default, is passed explicitly to the mixing members (the library's is main)
    assert {_value(c, "--partner-extent") for c in calls if "--partner-extent" in c} == {"union"}
    assert all(("--partner-extent" in c) == (_value(c, "--augment") == "seqmix") for c in calls)
    # the 3-epoch runs are finished and a longer budget does not count as them
    assert run_queue(script, fake, SEEDS="0 1") == []


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_matrix_keeps_the_first_stage_of_diff_pruning_runs_only(tmp_path):
    script, fake = queue_project(tmp_path, "glue_matrix.sh")
    calls = run_queue(script, fake, METHODS="diffprune diffprune-nonadaptive lora", SEEDS="0", GLUE_DIR="d")
    kept = {_value(c, "--method"): "--keep-first-stage" in c for c in calls}
    assert kept == {"diffprune": True, "diffprune-nonadaptive": True, "lora": False}


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_sparsity_sweep_trains_each_first_stage_once(tmp_path):
    script, fake = queue_project(tmp_path, "glue_sparsity.sh")
    # The matrix run of rte seed 0 kept its L0 stage; mrpc's did not.
    _write_marker(tmp_path / "runs/glue/rte/diffprune/seed0/l0/stage_done.json")
    fake.write_text(FAKE_DELTAMIX + KEEPS_FIRST_STAGE)
    calls = run_queue(script, fake, METHODS="diffprune", SPARSITIES="0.001 0.01", GLUE_DIR="d")
    runs = [
        (_value(c, "--task"), _value(c, "--target-sparsity"), c[c.index("--target-sparsity") + 6 :])
        for c in calls
    ]
    sweep = "runs/glue-sparsity/mrpc/diffprune/seed0/t0.001"
    assert [(task, t) for task, t, _ in runs] == [
        ("mrpc", "0.001"),
        ("mrpc", "0.01"),
        ("rte", "0.001"),
        ("rte", "0.01"),
    ]
    assert [reuse for _, _, reuse in runs] == [
        ["--keep-first-stage"],  # mrpc: the first point trains the stage and keeps it
        ["--first-stage-from", sweep],
        ["--first-stage-from", "runs/glue/rte/diffprune/seed0"],  # rte: the matrix run's
        ["--first-stage-from", "runs/glue/rte/diffprune/seed0"],
    ]
    assert run_queue(script, fake, METHODS="diffprune", SPARSITIES="0.001 0.01") == []  # all finished


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_sparsity_takes_first_stages_from_the_matrix_root_it_is_given(tmp_path):
    script, fake = queue_project(tmp_path, "glue_sparsity.sh")
    _write_marker(tmp_path / "runs/glue-new/rte/diffprune/seed0/l0/stage_done.json")
    calls = run_queue(script, fake, METHODS="diffprune", SPARSITIES="0.01", MATRIX_DIR="runs/glue-new")
    rte = [c for c in calls if _value(c, "--task") == "rte"]
    assert [_value(c, "--first-stage-from") for c in rte] == ["runs/glue-new/rte/diffprune/seed0"]


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_sparsity_sweeps_fixed_mask_learning_rates_from_one_first_stage(tmp_path):
    script, fake = queue_project(tmp_path, "glue_sparsity.sh")
    fake.write_text(FAKE_DELTAMIX + KEEPS_FIRST_STAGE)
    env = {"METHODS": "diffprune", "SPARSITIES": "0.005", "MASK_LRS": "5e-5 1e-3"}
    calls = run_queue(script, fake, **env, TASKS="", POLL_SECONDS="1")
    sweep = "runs/glue-sparsity/mrpc/diffprune/seed0"
    assert [c[c.index("--target-sparsity") :] for c in calls if "mrpc" in c] == [
        ["--target-sparsity", "0.005", "--mask-lr", "5e-5", "--data-dir", "../shared/data/glue",
         "--output-dir", f"{sweep}/t0.005-m5e-5", "--keep-first-stage"],
        ["--target-sparsity", "0.005", "--mask-lr", "1e-3", "--data-dir", "../shared/data/glue",
         "--output-dir", f"{sweep}/t0.005-m1e-3", "--first-stage-from", f"{sweep}/t0.005-m5e-5"],
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_sparsity_skips_the_points_of_a_failed_first_stage_and_ends(tmp_path):
    script, fake = queue_project(tmp_path, "glue_sparsity.sh")
    fails = 'case "$out" in */diffprune-structured/*/t0.001) rm "$out/run_done.json"; exit 1;; esac'
    fake.write_text(FAKE_DELTAMIX + fails + "\n")
    calls = run_queue(script, fake, TASKS="", SPARSITIES="0.001 0.01", POLL_SECONDS="1")
    started = [(_value(c, "--method"), _value(c, "--target-sparsity")) for c in calls if "mrpc" in c]
    # the structured sweep's first point is tried once; its 1% point, waiting for it, never starts
    assert started == [("diffprune", "0.001"), ("diffprune", "0.01"), ("diffprune-structured", "0.001")]


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_sparsity_trains_a_stage_when_the_first_point_kept_none(tmp_path):
    script, fake = queue_project(tmp_path, "glue_sparsity.sh")
    _write_marker(tmp_path / "runs/glue-sparsity/mrpc/diffprune/seed0/t0.001/run_done.json")
    calls = run_queue(script, fake, METHODS="diffprune", SPARSITIES="0.001 0.01", POLL_SECONDS="1")
    # the fake keeps no stage either: every point trains its own instead of waiting for one nobody trains
    assert [(_value(c, "--task"), _value(c, "--target-sparsity"), c[-1]) for c in calls] == [
        ("mrpc", "0.01", "--keep-first-stage"),
        ("rte", "0.001", "--keep-first-stage"),
        ("rte", "0.01", "--keep-first-stage"),
    ]


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_sparsity_copies_share_a_sweep_once_its_first_stage_is_done(tmp_path):
    """Two copies, one sweep of three points: the second copy waits for the first stage, then the two
    run the remaining points side by side (each point once)."""
    script, fake = queue_project(tmp_path, "glue_sparsity.sh")
    fake.write_text(  # the first stage takes 2 s, then each point 2 s more
        '#!/usr/bin/env bash\nargs="$*"\n'
        'while [ $# -gt 0 ]; do if [ "$1" = --output-dir ]; then out="$2"; fi; shift; done\n'
        'mkdir -p "$out"\n'
        'case "$args" in *--keep-first-stage*)\n'
        '  sleep 2; mkdir -p "$out/l0"; echo {} > "$out/l0/stage_done.json";;\nesac\n'
        'sleep 2; echo {} > "$out/run_done.json"\n'
    )
    env = {**os.environ, "DELTAMIX": str(fake), "METHODS": "diffprune", "POLL_SECONDS": "1"}
    copies = [
        subprocess.Popen(["bash", str(script), "mrpc"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [copy.communicate(timeout=60)[0] for copy in copies]
    assert all(copy.returncode == 0 for copy in copies)
    started = sorted(
        line.split()[7:] for out in outputs for line in out.splitlines() if line.startswith("==")
    )
    first = "runs/glue-sparsity/mrpc/diffprune/seed0/t0.001"
    assert started == [
        ["0.001", "--keep-first-stage"],
        ["0.0025", "--first-stage-from", first],
        ["0.01", "--first-stage-from", first],
    ]
    assert all(out.count("==") >= 1 for out in outputs)  # the waiting copy took a point too


def test_geoquery_matrix_queue_and_the_authors_partner_extent(tmp_path):
    script, fake = queue_project(tmp_path, "geoquery_matrix.sh")
    calls = run_queue(script, fake, SEEDS="0")
    assert [(_value(c, "--split"), _value(c, "--augment"), _value(c, "--output-dir")) for c in calls] == [
        ("query", "none", "runs/geoquery/query-logic/none-lstm-seed0"),
        ("query", "seqmix", "runs/geoquery/query-logic/seqmix-lstm-seed0"),
        ("question", "none", "runs/geoquery/question-logic/none-lstm-seed0"),
        ("question", "seqmix", "runs/geoquery/question-logic/seqmix-lstm-seed0"),
    ]
    # union, the queue's default, is passed explicitly to the mixing members (the library's is main)
    assert [_value(c, "--partner-extent") for c in calls if _value(c, "--augment") == "seqmix"] == [
        "union"
    ] * 2
    assert not any("--partner-extent" in c for c in calls if _value(c, "--augment") == "none")
    # The authors' extent: new SeqMix folders; the finished baselines are not run again.
    authors = run_queue(script, fake, SEEDS="0 1", PARTNER_EXTENT="main")
    extents = [
        (_value(c, "--output-dir"), "--partner-extent" in c and _value(c, "--partner-extent"))
        for c in authors
    ]
    assert extents == [
        ("runs/geoquery/query-logic/seqmix-main-lstm-seed0", "main"),
        ("runs/geoquery/question-logic/seqmix-main-lstm-seed0", "main"),
        ("runs/geoquery/query-logic/none-lstm-seed1", False),
        ("runs/geoquery/query-logic/seqmix-main-lstm-seed1", "main"),
        ("runs/geoquery/question-logic/none-lstm-seed1", False),
        ("runs/geoquery/question-logic/seqmix-main-lstm-seed1", "main"),
    ]


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_matrix_passes_glue_args_to_every_run(tmp_path):
    script, fake = queue_project(tmp_path, "glue_matrix.sh")
    calls = run_queue(script, fake, METHODS="full diffprune", SEEDS="0", GLUE_ARGS="--save-steps 1000")
    assert len(calls) == 6 and all(_value(c, "--save-steps") == "1000" for c in calls)


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_queue_runs_each_line_once_in_order(tmp_path):
    script, fake = queue_project(tmp_path, "glue_queue.sh")
    queue = tmp_path / "experiments" / "settings.txt"
    queue.write_text(
        "# a comment, then a blank line\n\n"
        "a|--task rte --method diffprune --seed 0 --clip-gates-apart --output-dir runs/x/a\n"
        "b|--task mrpc --method lora --seed 1 --output-dir runs/x/b\n"
    )
    log = fake.parent / "calls.log"
    env = {**os.environ, "DELTAMIX": str(fake), "GLUE_DIR": "my/glue"}
    subprocess.run(["bash", str(script), str(queue)], env=env, check=True, capture_output=True)
    calls = [line.split() for line in log.read_text().splitlines()]
    assert [_value(c, "--output-dir") for c in calls] == ["runs/x/a", "runs/x/b"]
    assert ["--keep-first-stage" in c for c in calls] == [True, False]
    assert "--clip-gates-apart" in calls[0] and {_value(c, "--data-dir") for c in calls} == {"my/glue"}
    assert sorted(p.name for p in (tmp_path / "runs/queue/settings").glob("*.done")) == ["a.done", "b.done"]
    log.unlink()
    subprocess.run(["bash", str(script), str(queue)], env=env, check=True, capture_output=True)
    assert not log.exists()  # both finished: nothing starts again
    missing = subprocess.run(["bash", str(script), "nope.txt"], env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "no such queue file: nope.txt" in missing.stderr


@pytest.mark.skipif(shutil.which("git") is None, reason="prepare.sh sizes the working tree with git")
def test_device_prepare_resplit_keeps_the_weights_and_balances_the_two_parts(tmp_path):
    """--resplit joins the two halves of the weights, checks them against their sha256 and splits them
    so both calls have the same room; halves that do not make the weights are refused."""
    import hashlib

    (tmp_path / "experiments" / "device").mkdir(parents=True)
    script = tmp_path / "experiments" / "device" / "prepare.sh"
    shutil.copy(REPO / "experiments" / "device" / "prepare.sh", script)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "experiments"], check=True)
    weights = os.urandom(300_000)
    part1, part2 = tmp_path / ".device" / "part1", tmp_path / ".device" / "part2"
    part2.mkdir(parents=True)
    (part1 / "data").mkdir(parents=True)
    (part1 / "data" / "train.tsv").write_bytes(b"x" * 100_000)  # part1's other contents
    (part1 / "weights.sha256").write_text(hashlib.sha256(weights).hexdigest() + "\n")
    (part1 / "weights.1").write_bytes(weights[:250_000])
    (part2 / "weights.2").write_bytes(weights[250_000:])

    subprocess.run(["bash", str(script), "--resplit"], check=True, capture_output=True)
    first, second = (part1 / "weights.1").read_bytes(), (part2 / "weights.2").read_bytes()
    assert first + second == weights
    # part1 with its data against part2, as du counts them (part1's two folders: up to 2 x 4 KiB)
    assert abs((len(first) + 100_000 + 65) - len(second)) <= 2 * 4096 + 2

    (part2 / "weights.2").write_bytes(second[:-1])  # a truncated half
    done = subprocess.run(["bash", str(script), "--resplit"], capture_output=True, text=True)
    assert done.returncode == 3 and "do not make the weights" in done.stdout
    assert (part1 / "weights.1").read_bytes() == first  # nothing rewritten


@pytest.mark.parametrize(
    "queue", sorted((REPO / "experiments" / "queues").glob("*.txt")), ids=lambda p: p.name
)
def test_every_committed_queue_line_is_a_valid_command_with_its_own_name_and_folder(
    queue: Path, tmp_path: Path
) -> None:
    """A typo in a queue line would only show hours later, when a copy reaches it: parse each line now
    with the real command line parser (as glue_queue.sh passes it, with --data-dir added)."""
    from deltamix.cli.main import build_parser

    parser = build_parser()
    names, folders = [], []
    for line in queue.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, arguments = line.split("|", 1)
        args = parser.parse_args(["diffprune", "glue", *arguments.split(), "--data-dir", str(tmp_path)])
        names.append(name)
        folders.append(args.output_dir)
    assert names, f"{queue.name} has no runs"
    assert len(set(names)) == len(names), f"{queue.name}: a name is used twice"
    assert None not in folders and len(set(folders)) == len(folders), (
        f"{queue.name}: output folders must differ"
    )


def test_precision_parity_runs_each_recipe_in_both_precisions_once(tmp_path: Path) -> None:
    script, fake = queue_project(tmp_path, "precision_parity.sh")
    calls = run_queue(script, fake, SEEDS="0 1")
    runs = {(_value(args, "--output-dir"), _value(args, "--precision")) for args in calls}
    # glue: 3 tasks x 3 methods (full, diffprune, diffprune-structured); scan, geoquery, multi30k: 1
    assert len(calls) == len(runs) == (3 * 3 + 1 + 1 + 1) * 2 * 2
    assert all(_value(args, "--threads") == "1" for args in calls)
    assert all(_value(args, "--results-dir") == "results/precision" for args in calls)
    glue = [args for args in calls if args[1] == "glue"]
    assert {_value(args, "--task") for args in glue} == {"rte", "mrpc", "stsb"}
    assert {_value(args, "--method") for args in glue} == {"full", "diffprune", "diffprune-structured"}
    assert run_queue(script, fake, SEEDS="0 1") == []  # everything finished: nothing runs again


def test_multi30k_converged_queues_the_claim_first_with_the_authors_recipe(tmp_path: Path) -> None:
    script, fake = queue_project(tmp_path, "multi30k_converged.sh")
    calls = run_queue(script, fake, PYTHON=fake_python(tmp_path, "bf16"))
    order = [(_value(args, "--augment"), _value(args, "--seed")) for args in calls]
    assert order[:6] == [
        ("none", "0"),
        ("seqmix", "0"),
        ("none", "1"),
        ("seqmix", "1"),
        ("none", "2"),
        ("seqmix", "2"),
    ]
    assert {a for a, _ in order[6:]} == {"word-dropout", "switchout", "seqmix-hard"}
    for args in calls:
        assert _value(args, "--patience") == "5" and _value(args, "--epochs") == "60"
        assert _value(args, "--max-tokens") == "4096" and _value(args, "--lr-schedule") == "inverse-sqrt"
        assert _value(args, "--partner-extent") == "main" and _value(args, "--dropout") == "0.3"
    assert run_queue(script, fake, PYTHON=fake_python(tmp_path, "bf16")) == []


def test_multi30k_converged_skips_recorded_runs_and_refuses_fp32_hardware(tmp_path: Path) -> None:
    script, fake = queue_project(tmp_path, "multi30k_converged.sh")
    (tmp_path / "results").mkdir()
    command = "deltamix seqmix translate --output-dir runs/multi30k-converged/none-seed0"
    (tmp_path / "results" / "translation.jsonl").write_text(f'{{"command": "{command}"}}\n')
    calls = run_queue(script, fake, PYTHON=fake_python(tmp_path, "bf16"), SEEDS="0")
    assert [_value(args, "--augment") for args in calls][:1] == ["seqmix"]  # none-seed0 is recorded
    env = {**os.environ, "DELTAMIX": str(fake), "PYTHON": fake_python(tmp_path, "fp32")}
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert done.returncode == 3 and "gives fp32 here" in done.stderr


def test_scan_long_runs_four_methods_on_two_splits_and_three_seeds(tmp_path: Path) -> None:
    script, fake = queue_project(tmp_path, "scan_long.sh")
    calls = run_queue(script, fake)
    runs = {(_value(a, "--split"), _value(a, "--augment"), _value(a, "--seed")) for a in calls}
    assert len(calls) == len(runs) == 2 * 4 * 3
    assert all(_value(a, "--max-steps") == "6000" for a in calls)
    assert {_value(a, "--augment") for a in calls[:12]} == {"geca", "geca+seqmix"}
    for args in calls:  # the authors' partner extent for the mixing members, nothing for the others
        if "seqmix" in _value(args, "--augment"):
            assert _value(args, "--partner-extent") == "main"
        else:
            assert "--partner-extent" not in args
    assert run_queue(script, fake) == []


# A fake `deltamix` for glue_tuned.sh: writes the run record deltamix would, with a held-out score that
# peaks at the rate given in $BEST_LR (the dev score peaks elsewhere: the choice must not follow dev).
FAKE_TUNED_DELTAMIX = """#!{python}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open(Path(__file__).parent / "calls.log", "a") as log:
    log.write(" ".join(args) + "\\n")
value = lambda option: args[args.index(option) + 1]
out, lr = Path(value("--output-dir")), float(value("--lr"))
best = float(os.environ["BEST_LR"])
record = {{
    "experiment": "glue", "task": value("--task"), "method": value("--method"), "seed": int(value("--seed")),
    "metrics": {{"score": lr, "holdout_score": 1 - abs(lr - best)}}, "model": "fake", "output_dir": str(out),
    "config": {{"select_on": value("--select-on"), "resolved_lr": lr, "lr": lr}},
}}
out.mkdir(parents=True, exist_ok=True)
(out / "run_done.json").write_text(json.dumps({{"record": record}}))
record["command"] = "deltamix diffprune glue " + " ".join(args)
results = Path(value("--results-dir"))
results.mkdir(parents=True, exist_ok=True)
with open(results / "glue.jsonl", "a") as records:
    records.write(json.dumps(record) + "\\n")
"""


@pytest.mark.slow  # the rate is picked by a Python process per task and method (~4 s each, 8 here)
@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_tuned_gives_every_method_three_rates_then_seeds_of_the_held_out_choice(tmp_path):
    import sys

    script, fake = queue_project(tmp_path, "glue_tuned.sh")
    fake.write_text(FAKE_TUNED_DELTAMIX.format(python=sys.executable))
    env = {"METHODS": "full lora", "BEST_LR": "1e-4", "LRS_lora": "5e-5 1e-4 5e-4", "PYTHON": sys.executable}
    calls = run_queue(script, fake, **env, GLUE_DIR="d", GLUE_ARGS="--max-train-examples 64")
    started = [
        (_value(c, "--task"), _value(c, "--method"), _value(c, "--lr"), _value(c, "--seed")) for c in calls
    ]
    expected = []
    for task in ("rte", "mrpc", "stsb", "sst2"):
        expected += [(task, "full", lr, "0") for lr in ("3e-5", "1e-4", "3e-4")]
        expected += [(task, "lora", lr, "0") for lr in ("5e-5", "1e-4", "5e-4")]
        expected += [(task, method, "1e-4", seed) for method in ("full", "lora") for seed in ("1", "2")]
    assert started == expected  # the best held-out rate, though the fake's dev score is highest at 3e-4
    assert all(
        _value(c, "--select-on") == "holdout" and _value(c, "--max-train-examples") == "64" for c in calls
    )
    assert _value(calls[0], "--output-dir") == "runs/glue-tuned/rte/full/lr3e-5/seed0"
    assert {_value(c, "--results-dir") for c in calls} == {"results"} and _value(
        calls[0], "--data-dir"
    ) == "d"
    assert run_queue(script, fake, **env) == []  # all finished: nothing runs again


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_tuned_waits_for_every_rate_before_the_seeds(tmp_path):
    import sys

    script, fake = queue_project(tmp_path, "glue_tuned.sh")
    fails = "if '3e-4' in args and os.environ.get('FAIL'): sys.exit(1)\n"
    fake.write_text(
        FAKE_TUNED_DELTAMIX.format(python=sys.executable).replace("best = ", fails + "best = ", 1)
    )
    env = {
        **os.environ,
        "DELTAMIX": str(fake),
        "METHODS": "full",
        "BEST_LR": "1e-4",
        "PYTHON": sys.executable,
    }
    log = fake.parent / "calls.log"

    def run(**more: str) -> list[tuple[str, str]]:
        log.unlink(missing_ok=True)
        subprocess.run(["bash", str(script), "rte"], env={**env, **more}, check=True, capture_output=True)
        calls = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
        return [(_value(c, "--lr"), _value(c, "--seed")) for c in calls]

    # 3e-4 fails: no seed 1 starts while a rate is missing
    assert run(FAIL="1", SEEDS="0 1", TUNED_DIR="runs/t") == [("3e-5", "0"), ("1e-4", "0"), ("3e-4", "0")]
    # the failed rate again, then the chosen rate's other seed
    assert run(SEEDS="0 1", TUNED_DIR="runs/t") == [("3e-4", "0"), ("1e-4", "1")]
    assert subprocess.run(["bash", str(script)], env={**env, "METHODS": "nope"}).returncode == 2


@pytest.mark.slow  # a Python process picks the rate (~4 s)
def test_glue_tuned_waits_for_a_rate_another_copy_runs_then_takes_its_seeds(tmp_path):
    """A copy left with nothing to run while another holds a rate looks again, then runs the seeds."""
    import fcntl
    import sys
    import time

    script, fake = queue_project(tmp_path, "glue_tuned.sh")
    fake.write_text(FAKE_TUNED_DELTAMIX.format(python=sys.executable))
    env = {
        **os.environ,
        "DELTAMIX": str(fake),
        "METHODS": "full",
        "BEST_LR": "3e-4",
        "PYTHON": sys.executable,
    }
    held = tmp_path / "runs" / "glue-tuned" / "rte" / "full" / "lr3e-4" / "seed0"
    held.parent.mkdir(parents=True)
    log = fake.parent / "calls.log"
    with open(f"{held}.lock", "w") as lock:  # "another copy" runs lr 3e-4
        fcntl.flock(lock, fcntl.LOCK_EX)
        queue = subprocess.Popen(
            ["bash", str(script), "rte"], env={**env, "SEEDS": "0 1", "POLL_SECONDS": "1"}, cwd=tmp_path
        )
        deadline = time.monotonic() + 60
        while (not log.exists() or len(log.read_text().splitlines()) < 2) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # a pass or two with nothing to run
        assert queue.poll() is None, "the copy gave up while another held a rate"
        subprocess.run(  # the other copy's run finishes
            [str(fake), "diffprune", "glue", "--task", "rte", "--method", "full", "--lr", "3e-4", "--seed", "0",
             "--select-on", "holdout", "--output-dir", str(held.relative_to(tmp_path)), "--results-dir", "results"],
            env=env, cwd=tmp_path, check=True,
        )  # fmt: skip
    assert queue.wait(timeout=60) == 0
    calls = [line.split() for line in log.read_text().splitlines()]
    started = [(_value(c, "--lr"), _value(c, "--seed")) for c in calls]
    assert started == [("3e-5", "0"), ("1e-4", "0"), ("3e-4", "0"), ("3e-4", "1")]  # the last from this copy


@pytest.mark.slow  # a Python process picks the rate of each task (~4 s each, 4 here)
@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_tuned_goes_on_from_the_records_when_the_run_folders_are_gone(tmp_path):
    import sys

    script, fake = queue_project(tmp_path, "glue_tuned.sh")
    fake.write_text(FAKE_TUNED_DELTAMIX.format(python=sys.executable))
    env = {"METHODS": "full", "BEST_LR": "1e-4", "PYTHON": sys.executable}
    tasks = ("rte", "mrpc", "stsb", "sst2")

    def started(**more: str) -> list[tuple[str, str, str]]:
        return [
            (_value(c, "--task"), _value(c, "--lr"), _value(c, "--seed"))
            for c in run_queue(script, fake, **more)
        ]

    rates = [(task, lr, "0") for task in tasks for lr in ("3e-5", "1e-4", "3e-4")]
    assert started(**env, SEEDS="0") == rates
    shutil.rmtree(tmp_path / "runs")  # a fresh clone: results/ without runs/
    # the rates are recorded: only the chosen rate's other seed of each task runs, then nothing
    assert started(**env, SEEDS="0 1") == [(task, "1e-4", "1") for task in tasks]
    shutil.rmtree(tmp_path / "runs")
    assert started(**env, SEEDS="0 1") == []


@pytest.mark.skipif(shutil.which("flock") is None, reason="the queues claim runs with flock(1)")
def test_glue_matrix_sparsity_and_queue_keep_selecting_on_dev(tmp_path):
    """Their finished runs selected on dev (before --select-on existed); a run added to them must too."""
    for part in "msq":
        (tmp_path / part).mkdir()
    script, fake = queue_project(tmp_path / "m", "glue_matrix.sh")
    assert {_value(c, "--select-on") for c in run_queue(script, fake, METHODS="full", SEEDS="0")} == {"dev"}
    script, fake = queue_project(tmp_path / "s", "glue_sparsity.sh")
    calls = run_queue(script, fake, METHODS="diffprune", SPARSITIES="0.01", POLL_SECONDS="1")
    assert calls and {_value(c, "--select-on") for c in calls} == {"dev"}
    script, fake = queue_project(tmp_path / "q", "glue_queue.sh")
    queue = tmp_path / "q" / "experiments" / "x.txt"
    queue.write_text(
        "a|--task rte --output-dir runs/a\nb|--task rte --select-on holdout --output-dir runs/b\n"
    )
    subprocess.run(["bash", str(script), str(queue)], env={**os.environ, "DELTAMIX": str(fake)}, check=True)
    calls = [line.split() for line in (fake.parent / "calls.log").read_text().splitlines()]
    # argparse takes the last --select-on: the queue's default, or the line's own
    assert [[c[i + 1] for i, a in enumerate(c) if a == "--select-on"][-1] for c in calls] == [
        "dev",
        "holdout",
    ]
