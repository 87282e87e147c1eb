"""How much of a SeqMix batch lies beyond the main example: what ``partner_extent`` union vs main changes.

With the default ``partner_extent="union"`` a partner longer than its main example adds positions that
hold only the partner's token at weight 1 - lambda (plus a full positional encoding): the encoder
attends to them and the loss counts the partner's labels there. The authors' fairseq code
(``"main"``) masks them. For a finished run folder of ``deltamix seqmix translate|parse|train``, this
replays the run's first epoch of batches (its data, tokenizer, batch size, seed and SeqMix settings,
the augmentation drawn as the trainer draws it) and measures, per epoch:

- ``src_overhang``: encoder positions attended under union but not under main, per main source token;
- ``tgt_overhang``: the same for the teacher-forced decoder input, per main target token;
- ``loss_weight_overhang``: the share of the union loss's token weight (its denominator) that sits on
  partner labels beyond the main target's end.

One record per run goes to ``<results-dir>/seqmix-partners.jsonl``.

    python experiments/partner_overhang.py runs/multi30k/seqmix-small-e15-avg5-wu1000-seed0
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from deltamix.cli.args import existing_dir
from deltamix.core.records import append_record, make_record
from deltamix.data.batching import BucketBatchSampler, Seq2SeqDataset, collate_examples, encode_pairs
from deltamix.data.tokenization import load_tokenizer
from deltamix.experiments.text.run import TextRunConfig, load_data
from deltamix.seqmix import SeqMixAugmenter, SeqMixConfig
from deltamix.seqmix.config import MIXING_VARIANTS
from deltamix.training.loop import augmentation_seed


def overhang(run_dir: Path) -> tuple[dict[str, float], dict]:
    """(metrics, the run's settings with its data's name) for one run folder."""
    path = run_dir / "config.json"
    if not path.is_file():
        raise SystemExit(
            f"{run_dir}: no config.json (not a run folder of deltamix seqmix translate|parse|train)"
        )
    settings = json.loads(path.read_text(encoding="utf-8"))
    if "seqmix" not in settings or "run" not in settings:
        raise SystemExit(f"{path}: not the config of a deltamix seqmix translate|parse|train run")
    config = TextRunConfig(**settings["run"])
    seqmix = SeqMixConfig.from_dict(settings["seqmix"])
    if seqmix.variant not in MIXING_VARIANTS:
        raise SystemExit(f"{run_dir}: a {seqmix.variant} run mixes with no partner from the batch")
    data = load_data(config)
    train = data.train[: config.train_limit] if config.train_limit else data.train
    tokenizer = load_tokenizer(run_dir)
    dataset = Seq2SeqDataset(encode_pairs(train, tokenizer))
    batch_size = settings["training"]["batch_size"]
    sampler = BucketBatchSampler(dataset.lengths(), batch_size, shuffle=True, seed=config.seed)
    augmenters = {
        extent: SeqMixAugmenter(
            replace(seqmix, partner_extent=extent),
            tokenizer.pad_id,
            tokenizer.unk_id,
            len(tokenizer),
            special_ids=(tokenizer.bos_id, tokenizer.eos_id),
        )
        for extent in ("union", "main")
    }
    counts = dict.fromkeys(("src_main", "src_extra", "tgt_main", "tgt_extra", "weight", "weight_extra"), 0.0)
    for step, indices in enumerate(sampler.batches(), start=1):
        batch = collate_examples(
            [dataset[i] for i in indices], tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id
        )
        seed = augmentation_seed(config.seed, step)  # the generator the trainer drew this step with
        mixed = {
            extent: augmenter(
                batch["src_ids"], batch["tgt_in"], batch["labels"], torch.Generator().manual_seed(seed)
            )
            for extent, augmenter in augmenters.items()
        }
        union, main = mixed["union"], mixed["main"]
        counts["src_main"] += float(batch["src_ids"].ne(tokenizer.pad_id).sum())
        counts["src_extra"] += float((union.src.mask & ~main.src.mask).sum())
        counts["tgt_main"] += float(batch["tgt_in"].ne(tokenizer.pad_id).sum())
        counts["tgt_extra"] += float((union.tgt_in.mask & ~main.tgt_in.mask).sum())
        if union.partner_labels is not None:  # soft SeqMix: the loss's token weights
            weight, rest = union.label_weight, 1.0 - union.label_weight
            beyond = union.partner_labels.ne(tokenizer.pad_id) & batch["labels"].eq(tokenizer.pad_id)
            counts["weight"] += float(
                (weight * batch["labels"].ne(tokenizer.pad_id)).sum()
                + (rest * union.partner_labels.ne(tokenizer.pad_id)).sum()
            )
            counts["weight_extra"] += float((rest * beyond).sum())
    metrics = {
        "src_overhang": counts["src_extra"] / counts["src_main"],
        "tgt_overhang": counts["tgt_extra"] / counts["tgt_main"],
        "loss_weight_overhang": counts["weight_extra"] / counts["weight"] if counts["weight"] else 0.0,
        "batches": float(len(sampler.batches())),
        "src_tokens": counts["src_main"],
        "tgt_tokens": counts["tgt_main"],
    }
    return metrics, {**settings, "task": config.record_task(data.name)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=existing_dir, help="run folders of SeqMix runs")
    parser.add_argument("--results-dir", default="results")
    args = parser.parse_args(argv)
    for run_dir in args.runs:
        started = time.perf_counter()
        metrics, settings = overhang(run_dir)
        run = settings["run"]
        record = make_record(
            "seqmix-partners",
            settings["task"],
            run["augment"],
            int(run["seed"]),
            metrics,
            "src_overhang",
            {
                "run_dir": str(run_dir),
                "run": run,
                "seqmix": settings["seqmix"],
                "training": settings["training"],
            },
            eval_seconds=time.perf_counter() - started,
        )
        path = append_record(record, args.results_dir)
        print(
            f"{run_dir}: beyond the main example, union adds {100 * metrics['src_overhang']:.2f}% encoder "
            f"positions, {100 * metrics['tgt_overhang']:.2f}% decoder positions, and "
            f"{100 * metrics['loss_weight_overhang']:.2f}% of the loss weight -> {path}"
        )


if __name__ == "__main__":
    main()
