"""A sparsity sweep trains diff pruning's first stage once: `--keep-first-stage` / `--first-stage-from`.

On a tiny BERT and the shared RTE data: a run started from another run's kept L0 stage gives the same
diff, bit for bit, as a run that trains that stage itself; mismatched settings and a folder without a
kept stage are refused, naming what is wrong.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file

from deltamix.cli.main import main
from deltamix.core.errors import DeltamixError
from deltamix.experiments.glue.run import GlueRunConfig, run_glue

QUICK = {"max_train_examples": 16, "max_eval_examples": 16, "max_steps": 2, "logging_steps": 1, "lr": 1e-3}


def _config(model: Path, glue: Path, out: Path, **kwargs) -> GlueRunConfig:
    settings = {"task": "rte", "method": "diffprune", **QUICK, **kwargs}
    return GlueRunConfig(
        model=str(model),
        data_dir=str(glue),
        output_dir=str(out),
        results_dir=str(out.parent / "results"),
        **settings,
    )


@pytest.mark.parametrize(("method", "first"), [("diffprune", "l0"), ("diffprune-nonadaptive", "full-ft")])
def test_a_run_from_a_kept_first_stage_equals_one_that_trains_it(
    method: str, first: str, tiny_model_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    source = _config(
        tiny_model_dir, glue_dir, tmp_path / "t1", method=method, target_sparsity=0.01, keep_first_stage=True
    )
    run_glue(source)
    kept = tmp_path / "t1" / first
    assert sorted(path.name for path in kept.iterdir()) == ["final_state.safetensors", "stage_done.json"]

    reused = run_glue(
        _config(
            tiny_model_dir,
            glue_dir,
            tmp_path / "t2",
            method=method,
            target_sparsity=0.02,
            first_stage_from=str(source.output_dir),
        )
    )
    scratch = run_glue(
        _config(tiny_model_dir, glue_dir, tmp_path / "t2-scratch", method=method, target_sparsity=0.02)
    )
    for name, tensor in load_file(str(tmp_path / "t2-scratch" / "diff.safetensors")).items():
        assert load_file(str(tmp_path / "t2" / "diff.safetensors"))[name].equal(tensor), name
    assert reused["metrics"] == scratch["metrics"]
    assert reused["stages"][0]["stage"] == first
    assert reused["stages"][0]["reused_from"] == str(source.output_dir)
    assert "reused_from" not in scratch["stages"][0]
    assert not (tmp_path / "t2" / first).exists()  # only the source keeps it


def test_mismatched_settings_and_a_folder_without_a_kept_stage_are_refused(
    tiny_model_dir: Path, glue_dir: Path, tmp_path: Path, capsys
) -> None:
    source = _config(tiny_model_dir, glue_dir, tmp_path / "src", keep_first_stage=True)
    run_glue(source)
    other_seed = _config(tiny_model_dir, glue_dir, tmp_path / "b", seed=1, first_stage_from=source.output_dir)
    with pytest.raises(DeltamixError, match=r"other settings than this run's \(seed: 0 there, 1 now\)"):
        run_glue(other_seed)
    assert not (tmp_path / "b" / "l0").exists() and not (tmp_path / "b" / "diff.safetensors").exists()
    other_lambda = _config(
        tiny_model_dir, glue_dir, tmp_path / "c", l0_lambda=1e-3, first_stage_from=source.output_dir
    )
    with pytest.raises(DeltamixError, match=r"resolved_l0_lambda"):
        run_glue(other_lambda)
    # A fixed-mask setting may differ.
    run_glue(
        _config(tiny_model_dir, glue_dir, tmp_path / "d", mask_lr=1e-4, first_stage_from=source.output_dir)
    )
    # A first stage from before clip_gates_apart existed clipped all gradients together: a default run
    # takes it, a run that clips the gates apart does not.
    config_path = Path(source.output_dir) / "config.json"
    old = json.loads(config_path.read_text(encoding="utf-8"))
    del old["clip_gates_apart"]
    config_path.write_text(json.dumps(old), encoding="utf-8")
    run_glue(
        _config(tiny_model_dir, glue_dir, tmp_path / "d2", mask_lr=2e-4, first_stage_from=source.output_dir)
    )
    apart = _config(
        tiny_model_dir, glue_dir, tmp_path / "d3", clip_gates_apart=True, first_stage_from=source.output_dir
    )
    with pytest.raises(DeltamixError, match=r"clip_gates_apart: False there, True now"):
        run_glue(apart)

    plain = _config(tiny_model_dir, glue_dir, tmp_path / "plain")
    run_glue(plain)  # the stages are deleted after success
    with pytest.raises(DeltamixError, match=r"holds no finished, kept l0 stage"):
        run_glue(_config(tiny_model_dir, glue_dir, tmp_path / "e", first_stage_from=plain.output_dir))
    with pytest.raises(ValueError, match="diff pruning methods only"):
        _config(tiny_model_dir, glue_dir, tmp_path / "f", method="lora", first_stage_from=plain.output_dir)
    argv = ["diffprune", "glue", "--task", "rte", "--model", str(tiny_model_dir), "--data-dir", str(glue_dir)]
    argv += [
        "--output-dir",
        str(tmp_path / "g"),
        "--max-steps",
        "1",
        "--first-stage-from",
        str(tmp_path / "nope"),
    ]
    with pytest.raises(SystemExit):
        main(argv)
    assert "does not exist" in capsys.readouterr().err
    assert json.loads((tmp_path / "src" / "l0" / "stage_done.json").read_text())["stage"] == "l0"


def test_a_run_stopped_before_its_fixed_mask_stage_restarts_with_other_fixed_mask_settings(
    tiny_model_dir: Path, glue_dir: Path, tmp_path: Path
) -> None:
    """Only the first stage's settings bind a run stopped before its fixed-mask stage began: the
    restart may take another --mask-lr or target sparsity (and records it); once the fixed-mask stage
    has begun, it may not."""
    source = _config(tiny_model_dir, glue_dir, tmp_path / "src", mask_lr=5e-5, keep_first_stage=True)
    run_glue(source)
    stopped = tmp_path / "stopped"  # as a run stopped after its L0 stage: config.json and l0/ only
    stopped.mkdir()
    shutil.copytree(tmp_path / "src" / "l0", stopped / "l0")
    config = json.loads((tmp_path / "src" / "config.json").read_text(encoding="utf-8"))
    (stopped / "config.json").write_text(json.dumps({**config, "output_dir": str(stopped)}), encoding="utf-8")
    restarted = run_glue(_config(tiny_model_dir, glue_dir, stopped, mask_lr=2e-4, target_sparsity=0.02))
    assert restarted["config"]["resolved_mask_lr"] == 2e-4 and restarted["target_sparsity"] == 0.02
    assert restarted["stages"][-1]["lr"] == 2e-4
    assert json.loads((stopped / "config.json").read_text(encoding="utf-8"))["mask_lr"] == 2e-4
    with pytest.raises(DeltamixError, match=r"mask_lr: 0.0002 there, 0.0001 now"):  # finished: it binds
        run_glue(_config(tiny_model_dir, glue_dir, stopped, mask_lr=1e-4))

    begun = tmp_path / "begun"  # stopped in its fixed-mask stage
    shutil.copytree(tmp_path / "src" / "l0", begun / "l0")
    (begun / "fixed-mask").mkdir()
    (begun / "config.json").write_text(json.dumps({**config, "output_dir": str(begun)}), encoding="utf-8")
    with pytest.raises(DeltamixError, match=r"mask_lr: 5e-05 there, 0.0002 now"):
        run_glue(_config(tiny_model_dir, glue_dir, begun, mask_lr=2e-4))
    fresh = tmp_path / "fresh"  # stopped in its L0 stage: first-stage settings bind
    fresh.mkdir()
    (fresh / "config.json").write_text(json.dumps({**config, "output_dir": str(fresh)}), encoding="utf-8")
    with pytest.raises(DeltamixError, match=r"seed: 0 there, 1 now"):
        run_glue(_config(tiny_model_dir, glue_dir, fresh, seed=1, mask_lr=2e-4))
