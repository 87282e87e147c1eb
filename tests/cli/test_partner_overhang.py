"""experiments/partner_overhang.py: how much of a SeqMix epoch lies beyond the main examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from deltamix.core.io import read_jsonl
from deltamix.data.batching import BucketBatchSampler, Seq2SeqDataset, collate_examples, encode_pairs
from deltamix.data.tokenization import load_tokenizer
from deltamix.seqmix import SeqMixAugmenter, SeqMixConfig
from deltamix.training.loop import augmentation_seed


def test_one_record_per_run_counting_the_union_only_positions(
    averaged_run, experiment_script, tmp_path: Path
) -> None:
    run_dir, pairs = averaged_run
    experiment_script("partner_overhang").main([str(run_dir), "--results-dir", str(tmp_path)])
    (record,) = read_jsonl(tmp_path / "seqmix-partners.jsonl")
    assert record["experiment"] == "seqmix-partners" and record["method"] == "seqmix"
    metrics = record["metrics"]
    assert 0 <= metrics["src_overhang"] < 1 and 0 <= metrics["tgt_overhang"] < 1
    assert metrics["src_overhang"] + metrics["tgt_overhang"] > 0  # the pairs differ in length
    assert metrics["loss_weight_overhang"] <= metrics["tgt_overhang"]  # weighted by 1 - lambda <= 0.5

    # Independently: source positions of the union mix that are padding in the main example.
    settings = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    tokenizer = load_tokenizer(run_dir)
    dataset = Seq2SeqDataset(encode_pairs(pairs, tokenizer))
    sampler = BucketBatchSampler(dataset.lengths(), settings["training"]["batch_size"], shuffle=True, seed=0)
    augmenter = SeqMixAugmenter(
        SeqMixConfig.from_dict(settings["seqmix"]),
        tokenizer.pad_id,
        tokenizer.unk_id,
        len(tokenizer),
        special_ids=(tokenizer.bos_id, tokenizer.eos_id),
    )
    extra, main = {"src_ids": 0, "tgt_in": 0}, {"src_ids": 0, "tgt_in": 0}
    for step, indices in enumerate(sampler.batches(), start=1):
        batch = collate_examples(
            [dataset[i] for i in indices], tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id
        )
        generator = torch.Generator().manual_seed(augmentation_seed(0, step))
        mixed = augmenter(batch["src_ids"], batch["tgt_in"], batch["labels"], generator)
        for key, tokens in (("src_ids", mixed.src), ("tgt_in", mixed.tgt_in)):
            extra[key] += int((tokens.mask & batch[key].eq(tokenizer.pad_id)).sum())
            main[key] += int(batch[key].ne(tokenizer.pad_id).sum())
    assert metrics["src_overhang"] == pytest.approx(extra["src_ids"] / main["src_ids"])
    assert metrics["tgt_overhang"] == pytest.approx(extra["tgt_in"] / main["tgt_in"])


def test_the_report_shows_each_run(averaged_run, experiment_script, tmp_path: Path) -> None:
    from deltamix.experiments.report import generate_report

    run_dir, _ = averaged_run
    experiment_script("partner_overhang").main([str(run_dir), "--results-dir", str(tmp_path)])
    (record,) = read_jsonl(tmp_path / "seqmix-partners.jsonl")
    text = generate_report(tmp_path, readme=None).read_text(encoding="utf-8")
    assert "## SeqMix partners beyond the main example" in text
    assert f"| pairs | {run_dir} | 0.00% | {100 * record['metrics']['tgt_overhang']:.2f}% |" in text


def test_a_folder_that_is_not_a_seqmix_run_is_refused_by_name(experiment_script, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no config\.json"):
        experiment_script("partner_overhang").main([str(tmp_path), "--results-dir", str(tmp_path)])
    (tmp_path / "config.json").write_text(json.dumps({"task": "rte"}), encoding="utf-8")
    with pytest.raises(SystemExit, match="not the config of a deltamix seqmix"):
        experiment_script("partner_overhang").main([str(tmp_path), "--results-dir", str(tmp_path)])
    assert not (tmp_path / "seqmix-partners.jsonl").exists()
