"""Translation with transformers' Seq2SeqTrainer plus SeqMix (or word dropout, SwitchOut): a script to copy.

It reads (source, target) pairs with ``datasets``, tokenizes them, trains with `SeqMixSeq2SeqTrainer`
(``transformers.Seq2SeqTrainer`` + `deltamix.seqmix.hf_trainer.SeqMixTrainerMixin`) and scores the
``model.generate`` outputs with sacrebleu. The SeqMix lines are marked ``# SeqMix``; the rest is the
usual ``run_translation.py`` recipe. Arguments are ``Seq2SeqTrainingArguments``' and `SeqMixConfig`'s
own (``HfArgumentParser``), plus the data and model options below::

    python examples/seq2seq_trainer_seqmix.py --tiny --max_steps 200 --output_dir /tmp/seqmix
    python examples/seq2seq_trainer_seqmix.py --multi30k /work/shared/data/multi30k --tiny \\
        --train_limit 5000 --max_steps 2000 --variant seqmix --alpha 0.1 --output_dir /tmp/m30k
    python examples/seq2seq_trainer_seqmix.py --train_file train.tsv --validation_file dev.tsv \\
        --model_name_or_path ./my-t5 --variant switchout --output_dir /tmp/t5

Data: a TSV (source<TAB>target, no header) or JSON lines file with ``source`` and ``target`` fields;
``--multi30k DIR`` (``DIR/raw/{train,val}.{de,en}.gz``); none of them: a built-in toy task (reverse a
few words). ``--tiny`` builds a word-level tokenizer from the training data and a small BART from a
config, so the script runs offline in seconds; otherwise ``--model_name_or_path`` names a pretrained
encoder-decoder (a local folder or a Hub id) and its tokenizer.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import sacrebleu
from datasets import Dataset, DatasetDict, load_dataset
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    DataCollatorForSeq2Seq,
    HfArgumentParser,
    PreTrainedTokenizerFast,
    Seq2SeqTrainingArguments,
)

from deltamix.seqmix import SeqMixConfig  # SeqMix
from deltamix.seqmix.hf_trainer import SeqMixSeq2SeqTrainer  # SeqMix

logger = logging.getLogger(__name__)


@dataclass
class ExampleArguments:
    """Data and model options of this script."""

    train_file: str | None = field(
        default=None,
        metadata={"help": "TSV (source<TAB>target) or JSON lines (source, target) training pairs"},
    )
    validation_file: str | None = field(default=None, metadata={"help": "the dev pairs, same format"})
    multi30k: str | None = field(
        default=None, metadata={"help": "a Multi30k folder (raw/{train,val}.{de,en}.gz): German to English"}
    )
    train_limit: int | None = field(default=None, metadata={"help": "use the first N training pairs"})
    eval_limit: int | None = field(default=200, metadata={"help": "use the first N dev pairs (None: all)"})
    tiny: bool = field(
        default=False, metadata={"help": "a word-level tokenizer and a small BART built from a config"}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "a pretrained encoder-decoder (folder or Hub id), unless --tiny"}
    )
    max_source_length: int = field(default=128, metadata={"help": "truncate sources to this many tokens"})
    max_target_length: int = field(default=128, metadata={"help": "truncate targets to this many tokens"})


def toy_pairs(n: int, seed: int) -> list[dict[str, str]]:
    """``n`` pairs of the toy task: the target is the source's words reversed."""
    words = ["red", "blue", "green", "small", "big", "dog", "cat", "bird", "runs", "sits", "eats", "sleeps"]
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        sentence = [rng.choice(words) for _ in range(rng.randint(2, 6))]
        pairs.append({"source": " ".join(sentence), "target": " ".join(reversed(sentence))})
    return pairs


def read_pairs(path: str) -> Dataset:
    """A TSV (two columns, no header) or JSON lines file of pairs as a Dataset with source and target."""
    if Path(path).suffix in (".json", ".jsonl"):
        return load_dataset("json", data_files=path, split="train").select_columns(["source", "target"])
    # QUOTE_NONE (3): a quote inside a sentence is text, not CSV quoting.
    return load_dataset(
        "csv", data_files=path, split="train", delimiter="\t", column_names=["source", "target"], quoting=3
    )


def load_pairs(args: ExampleArguments) -> DatasetDict:
    """The train and validation pairs the arguments name (the toy task if none)."""
    if args.multi30k:
        raw = Path(args.multi30k)
        raw = raw / "raw" if (raw / "raw").is_dir() else raw
        splits = {}
        for split, stem in (("train", "train"), ("validation", "val")):
            side = {
                lang: load_dataset("text", data_files=str(raw / f"{stem}.{lang}.gz"), split="train")["text"]
                for lang in ("de", "en")
            }
            splits[split] = Dataset.from_dict({"source": side["de"], "target": side["en"]})
        data = DatasetDict(splits)
    elif args.train_file:
        if not args.validation_file:
            raise ValueError("--train_file needs --validation_file")
        data = DatasetDict(train=read_pairs(args.train_file), validation=read_pairs(args.validation_file))
    else:
        data = DatasetDict(
            train=Dataset.from_list(toy_pairs(2000, seed=0)),
            validation=Dataset.from_list(toy_pairs(100, seed=1)),
        )
    if args.train_limit is not None:
        data["train"] = data["train"].select(range(min(args.train_limit, len(data["train"]))))
    if args.eval_limit is not None:
        data["validation"] = data["validation"].select(range(min(args.eval_limit, len(data["validation"]))))
    return data


def tiny_model_and_tokenizer(train: Dataset) -> tuple[BartForConditionalGeneration, PreTrainedTokenizerFast]:
    """A whitespace word-level tokenizer of the training pairs and a 2-layer BART sized for it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator(
        (text for row in train for text in (row["source"], row["target"])),
        trainers.WordLevelTrainer(special_tokens=specials, min_frequency=1),
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        forced_bos_token_id=None, forced_eos_token_id=None, dropout=0.1,
    )  # fmt: skip
    return BartForConditionalGeneration(config), tokenizer


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, evaluate (BLEU of ``model.generate``) and return the final dev metrics."""
    parser = HfArgumentParser((ExampleArguments, SeqMixConfig, Seq2SeqTrainingArguments))
    args, seqmix, training = parser.parse_args_into_dataclasses(argv)
    training.predict_with_generate = True
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    data = load_pairs(args)
    if args.tiny:
        model, tokenizer = tiny_model_and_tokenizer(data["train"])
    elif args.model_name_or_path:
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
        model = AutoModelForSeq2SeqLM.from_pretrained(args.model_name_or_path)
    else:
        raise ValueError("give --tiny or --model_name_or_path")

    def tokenize(batch: dict[str, list[str]]) -> dict[str, list[list[int]]]:
        inputs = tokenizer(batch["source"], max_length=args.max_source_length, truncation=True)
        targets = tokenizer(text_target=batch["target"], max_length=args.max_target_length, truncation=True)
        inputs["labels"] = targets["input_ids"]
        return inputs

    encoded = data.map(tokenize, batched=True, remove_columns=["source", "target"])
    references = list(data["validation"]["target"])

    def compute_metrics(prediction) -> dict[str, float]:
        ids = prediction.predictions
        ids = [[i for i in row if i >= 0] for row in ids.tolist()]  # -100 pads the generated rows
        hypotheses = [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return {"bleu": sacrebleu.corpus_bleu(hypotheses, [references]).score}

    if training.generation_max_length is None:
        training.generation_max_length = args.max_target_length
    trainer = SeqMixSeq2SeqTrainer(
        model=model,
        args=training,
        train_dataset=encoded["train"],
        eval_dataset=encoded["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),  # labels padded with -100
        compute_metrics=compute_metrics,
        seqmix_config=seqmix,  # SeqMix
    )
    trainer.train()
    metrics = trainer.evaluate()
    logger.info("dev: %s", metrics)
    trainer.save_model()
    return metrics


if __name__ == "__main__":
    main()
