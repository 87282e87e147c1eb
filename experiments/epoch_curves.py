"""Clean validation loss of each epoch snapshot of finished seq2seq runs: still improving, or overfitting?

For every run folder of ``deltamix seqmix translate|parse|train`` given, with its epoch snapshots
(``epochs/step-*.safetensors``, kept by ``--average-last``): the run's validation pairs (from its
``config.json``), and for each snapshot and for their mean (the model the run scored) the per-token
negative log-likelihood of the reference (teacher forcing, no augmentation, no label smoothing) and the
token accuracy. A regulariser such as SeqMix should pay off once the baseline's clean validation loss
stops falling; this measures where the runs are. Appends one record per run to
``<results-dir>/translation-curves.jsonl`` (per-snapshot values under ``snapshots``) and prints a table.

    python experiments/epoch_curves.py runs/multi30k/none-small-e15-avg5-wu1000-seed0 \\
        runs/multi30k/seqmix-small-e15-avg5-wu1000-seed0
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from deltamix.cli.args import existing_dir, positive_int
from deltamix.core.mixed_tokens import MixedTokens
from deltamix.core.records import append_record, make_record
from deltamix.data.batching import collate_examples, encode_pairs
from deltamix.data.tokenization import load_tokenizer
from deltamix.experiments.text.run import TextRunConfig, average_checkpoints, load_data
from deltamix.seqmix.loss import label_smoothed_nll
from deltamix.training.loop import load_model
from deltamix.training.predict import length_sorted_batches


@torch.no_grad()
def clean_loss(model: torch.nn.Module, examples: list, tokenizer, batch_size: int) -> dict[str, float]:
    """Per-token NLL (nats) and accuracy of the references of ``examples`` (teacher forcing)."""
    model.eval()
    total_nll, correct, tokens = 0.0, 0, 0
    for indices in length_sorted_batches([len(src) + len(tgt) for src, tgt in examples], batch_size):
        batch = collate_examples(
            [examples[i] for i in indices], tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id
        )
        lprobs = model(
            MixedTokens.plain(batch["src_ids"], tokenizer.pad_id),
            MixedTokens.plain(batch["tgt_in"], tokenizer.pad_id),
        )  # B x T x V
        labels = batch["labels"]
        kept = labels.ne(tokenizer.pad_id)
        _, nll = label_smoothed_nll(lprobs, labels, 0.0, tokenizer.pad_id)  # B x T, 0 at padding
        total_nll += float(nll.sum())
        correct += int((lprobs.argmax(-1).eq(labels) & kept).sum())
        tokens += int(kept.sum())
    return {
        "valid_nll": total_nll / tokens,
        "valid_token_accuracy": correct / tokens,
        "valid_tokens": float(tokens),
    }


def curve(run_dir: Path, batch_size: int) -> tuple[dict, list[dict], dict]:
    """(summary metrics, per-snapshot rows, the run's settings and its data's name) of one run folder."""
    settings = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    config = TextRunConfig(**settings["run"])
    data = load_data(config)
    valid = data.valid
    if config.eval_limit is not None:
        valid = valid[: config.eval_limit]
    tokenizer = load_tokenizer(run_dir)
    model, _ = load_model(run_dir / "model")
    examples = encode_pairs(valid, tokenizer)
    snapshots = sorted((run_dir / "epochs").glob("step-*.safetensors"))
    if len(snapshots) < 2:
        raise SystemExit(f"{run_dir}: fewer than 2 epoch snapshots in epochs/ (run it with --average-last N)")
    rows = []
    for path in snapshots:
        model.load_state_dict(load_file(str(path)))
        step = int(path.stem.split("-")[1])
        rows.append(
            {"snapshot": path.name, "step": step, **clean_loss(model, examples, tokenizer, batch_size)}
        )
    model.load_state_dict(average_checkpoints(snapshots))
    averaged = clean_loss(model, examples, tokenizer, batch_size)
    first, last = rows[0], rows[-1]
    best = min(rows, key=lambda row: row["valid_nll"])
    metrics = {
        "valid_nll_averaged": averaged["valid_nll"],
        "valid_token_accuracy_averaged": averaged["valid_token_accuracy"],
        "valid_nll_first_snapshot": first["valid_nll"],
        "valid_nll_last_snapshot": last["valid_nll"],
        "valid_nll_change_over_snapshots": last["valid_nll"] - first["valid_nll"],
        "best_snapshot_step": float(best["step"]),
        "snapshots": float(len(rows)),
    }
    return metrics, rows, {**settings, "task": config.record_task(data.name)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=existing_dir, help="finished run folders with epochs/")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--results-dir", default="results")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for run_dir in args.runs:
        started = time.perf_counter()
        metrics, rows, settings = curve(run_dir, args.batch_size)
        run = settings["run"]
        record = make_record(
            "translation-curves",
            settings["task"],
            run["augment"],
            int(run["seed"]),
            metrics,
            "valid_nll_change_over_snapshots",
            {
                "run_dir": str(run_dir),
                "run": run,
                "training": settings.get("training"),
                "seqmix": settings.get("seqmix"),  # the run's resolved augmentation (report labels)
                "batch_size": args.batch_size,
            },
            eval_seconds=time.perf_counter() - started,
            snapshots=rows,
        )
        path = append_record(record, args.results_dir)
        print(f"{run_dir} ({run['augment']}, seed {run['seed']}) -> {path}")
        for row in rows:
            print(
                f"  step {row['step']:>6}: valid NLL {row['valid_nll']:.4f}, token accuracy {row['valid_token_accuracy']:.4f}"
            )
        print(f"  mean of the snapshots: valid NLL {metrics['valid_nll_averaged']:.4f}")


if __name__ == "__main__":
    main()
