"""Seq2seq data sets: Multi30k, IWSLT'14 and other Hub pairs, parallel-text folders, pairs files, GeoQuery.

Every loader returns `Seq2SeqData`: three lists of ``(source, target)`` string pairs (train, valid,
test). Text is kept as in the files (stripped of surrounding whitespace); subword tokenization or
word splitting happens later (`deltamix.data.tokenization`, `deltamix.data.vocab`). The per-format
readers the loaders use (``read_parallel``, ``read_pairs_file``, ...) are in `deltamix.data.pair_files`
and importable from here too.

Bad input raises `DataFormatError` naming the file and the 1-based line: a missing file, parallel
files of unequal length, an empty line, bytes that are not UTF-8, a malformed TSV or JSONL row, a
corrupt gzip file. An unknown split name raises `ValueError` listing the valid ones. A Hub data set
that cannot be loaded (offline, unknown id) raises `DataUnavailableError` saying how to use local
files instead (``--data-dir``).

Local layouts:

- Multi30k (``load_multi30k``): ``<dir>/raw/{train,val,test_2016_flickr}.{de,en}.gz`` as in the
  ``multi30k/dataset`` repository (``<dir>`` may also be the ``raw`` folder itself).
- Parallel text (``load_parallel_dir``): ``<dir>/{train,valid,test}.{src}`` and ``.{tgt}``, one
  sentence per line, optionally gzip-compressed (``.gz``); ``val`` or ``dev`` may stand for
  ``valid`` (fairseq's ``prepare-iwslt14.sh`` output has this layout).
- Pairs files (``read_pairs_file``): ``.tsv`` (``source<TAB>target`` per line, an optional first
  line ``source<TAB>target`` is a header) or ``.jsonl`` (one ``{"source": ..., "target": ...}``
  object per line, other keys ignored); either may be gzip-compressed (``.tsv.gz``). Files with more
  columns name them (``columns=("source", "target", "category")``, COGS-style TSVs whose third
  column is the generalisation type): a ``category`` column is kept in `Seq2SeqData.categories`.
- GeoQuery (``load_geoquery``): ``geography-logic.json`` and ``geography.json`` from
  ``jkkummerfeld/text2sql-data``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deltamix.core.errors import DataFormatError, DataUnavailableError
from deltamix.data.pair_files import (
    CATEGORY_COLUMN,
    DEFAULT_COLUMNS,
    Pair,
    check_pair,
    decode_lines,
    parse_columns,
    read_bytes,
    read_jsonl_pairs,
    read_jsonl_rows,
    read_lines,
    read_pairs_file,
    read_pairs_rows,
    read_parallel,
    read_tsv_pairs,
    read_tsv_rows,
    source_name,
)

logger = logging.getLogger(__name__)

# The per-format readers of `pair_files` belong to this module's API too.
__all__ = [
    "CATEGORY_COLUMN",
    "DEFAULT_COLUMNS",
    "GEOQUERY_FORMS",
    "GEOQUERY_SPLITS",
    "HUB_DATASETS",
    "SPLITS",
    "Pair",
    "Seq2SeqData",
    "decode_lines",
    "load_geoquery",
    "load_hub_translation",
    "load_multi30k",
    "load_pair_files",
    "load_parallel_dir",
    "load_translation",
    "parse_columns",
    "read_jsonl_pairs",
    "read_jsonl_rows",
    "read_lines",
    "read_pairs_file",
    "read_pairs_rows",
    "read_parallel",
    "read_tsv_pairs",
    "read_tsv_rows",
    "source_name",
    "substitute_variables",
    "take",
]

SPLITS = ("train", "valid", "test")
GEOQUERY_SPLITS = ("question", "query")
GEOQUERY_FORMS = ("logic", "sql")
_GEOQUERY_FILES = {"logic": "geography-logic.json", "sql": "geography.json"}
_MULTI30K_FILES = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
_VALID_ALIASES = ("valid", "val", "dev")
# Hub shortcuts: name -> (dataset id, config). Any other id is passed to `datasets.load_dataset` as is.
HUB_DATASETS = {
    "iwslt14": ("bbaaaa/iwslt14-de-en", "de-en"),
    "multi30k": ("bentrevett/multi30k", None),
}
_HUB_SPLIT_NAMES = {"train": ("train",), "valid": ("validation", "valid", "dev"), "test": ("test",)}


@dataclass
class Seq2SeqData:
    """Train, validation and test pairs of one data set.

    Attributes:
        name: a short name (e.g. ``"multi30k-de-en"``, ``"geoquery-query-logic"``).
        train, valid, test: lists of ``(source, target)`` strings.
        categories: split name -> one category label per pair of that split (files read with a
            ``category`` column; empty otherwise).
    """

    name: str
    train: list[Pair]
    valid: list[Pair]
    test: list[Pair]
    categories: dict[str, list[str]] = field(default_factory=dict)

    def split(self, name: str) -> list[Pair]:
        """The pairs of split ``name`` (``"train"``, ``"valid"`` or ``"test"``).

        Raises:
            ValueError: for any other name.
        """
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        """Number of pairs per split."""
        return {name: len(getattr(self, name)) for name in SPLITS}


def load_multi30k(data_dir: str | Path, source_lang: str = "de", target_lang: str = "en") -> Seq2SeqData:
    """Multi30k task 1 from the raw gzip files: train (29,000), val (1,014), test_2016_flickr (1,000).

    Args:
        data_dir: the Multi30k folder (holding ``raw/``) or its ``raw`` folder.
        source_lang, target_lang: ``"de"`` and ``"en"`` (the files here); ``fr``/``cs`` if present.

    Raises:
        DataFormatError: a file is missing or malformed.
    """
    root = Path(data_dir)
    raw = root / "raw" if (root / "raw").is_dir() else root
    splits = {}
    for split, stem in _MULTI30K_FILES.items():
        splits[split] = read_parallel(raw / f"{stem}.{source_lang}.gz", raw / f"{stem}.{target_lang}.gz")
    return Seq2SeqData(name=f"multi30k-{source_lang}-{target_lang}", **splits)


def _find_split_file(data_dir: Path, split: str, lang: str) -> Path:
    names = _VALID_ALIASES if split == "valid" else (split,)
    for name in names:
        for suffix in ("", ".gz"):
            candidate = data_dir / f"{name}.{lang}{suffix}"
            if candidate.is_file():
                return candidate
    tried = ", ".join(f"{name}.{lang}[.gz]" for name in names)
    raise DataFormatError(data_dir, f"no {split} file for language {lang!r} (looked for {tried})")


def load_parallel_dir(data_dir: str | Path, source_lang: str, target_lang: str) -> Seq2SeqData:
    """Parallel text files ``{train,valid,test}.{lang}[.gz]`` in ``data_dir`` (``val``/``dev`` = valid).

    Raises:
        DataFormatError: a file is missing (names the folder and the names tried) or malformed.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DataFormatError(root, "data folder not found")
    splits = {
        split: read_parallel(
            _find_split_file(root, split, source_lang), _find_split_file(root, split, target_lang)
        )
        for split in SPLITS
    }
    return Seq2SeqData(name=f"{root.name}-{source_lang}-{target_lang}", **splits)


def _pairs_from_hub_split(rows: Any, source_lang: str, target_lang: str, where: str) -> list[Pair]:
    columns = set(rows.column_names)
    if "translation" in columns:
        get = lambda row: (row["translation"][source_lang], row["translation"][target_lang])  # noqa: E731
    elif {source_lang, target_lang} <= columns:
        get = lambda row: (row[source_lang], row[target_lang])  # noqa: E731
    elif {"source", "target"} <= columns:
        get = lambda row: (row["source"], row["target"])  # noqa: E731
    else:
        raise DataFormatError(
            where,
            f"no 'translation' column and no {source_lang!r}/{target_lang!r} or source/target columns "
            f"(columns: {sorted(columns)})",
        )
    pairs = []
    for index, row in enumerate(rows):
        try:
            pairs.append(check_pair(Path(where), index + 1, *get(row)))
        except KeyError as error:
            raise DataFormatError(where, f"row has no language {error}", index + 1) from None
    return pairs


def load_hub_translation(
    dataset: str, source_lang: str, target_lang: str, config: str | None = None
) -> Seq2SeqData:
    """A translation data set from the Hugging Face Hub through `datasets.load_dataset`.

    ``dataset`` is a shortcut of `HUB_DATASETS` (``"iwslt14"``) or any Hub id; rows hold a
    ``translation`` dict keyed by language (the Hub convention), or one column per language, or
    ``source``/``target`` columns. The validation split may be called validation, valid or dev.

    Raises:
        DataUnavailableError: the data set cannot be loaded (offline, unknown id, needs a loading
            script): the message says how to pass local files with ``--data-dir`` instead.
        DataFormatError: the rows do not hold the two languages.
    """
    hub_id, default_config = HUB_DATASETS.get(dataset, (dataset, None))
    config = config if config is not None else default_config
    try:
        import datasets

        loaded = datasets.load_dataset(hub_id, config)
    except Exception as error:  # offline, missing, gated, script-based: all mean "use local files"
        raise DataUnavailableError(
            f"could not load {hub_id!r} from the Hugging Face Hub ({type(error).__name__}: {error}). "
            f"Download it where you have internet, or pass a local folder with --data-dir holding "
            f"train/valid/test.{source_lang} and .{target_lang} (one sentence per line, optionally .gz; "
            f"fairseq's prepare-iwslt14.sh writes this layout)"
        ) from error
    splits = {}
    for split, candidates in _HUB_SPLIT_NAMES.items():
        found = next((name for name in candidates if name in loaded), None)
        if found is None:
            raise DataFormatError(hub_id, f"no {split} split (has: {', '.join(loaded)})")
        splits[split] = _pairs_from_hub_split(loaded[found], source_lang, target_lang, f"{hub_id}[{found}]")
    return Seq2SeqData(name=f"{dataset.split('/')[-1]}-{source_lang}-{target_lang}", **splits)


def load_translation(
    dataset: str,
    data_dir: str | Path | None = None,
    source_lang: str = "de",
    target_lang: str = "en",
    config: str | None = None,
) -> Seq2SeqData:
    """A translation data set: Multi30k or parallel files from ``data_dir``, else from the Hub.

    With ``data_dir``, ``"multi30k"`` reads the raw Multi30k layout and any other ``dataset``
    reads ``{train,valid,test}.{lang}`` files (the name then only labels the results). Without it,
    the data set is loaded from the Hub (`load_hub_translation`).
    """
    if data_dir is not None:
        if dataset == "multi30k":
            return load_multi30k(data_dir, source_lang, target_lang)
        data = load_parallel_dir(data_dir, source_lang, target_lang)
        data.name = f"{dataset.split('/')[-1]}-{source_lang}-{target_lang}"
        return data
    return load_hub_translation(dataset, source_lang, target_lang, config)


def load_pair_files(
    train: str | Path,
    valid: str | Path,
    test: str | Path,
    name: str = "files",
    columns: str | Sequence[str] | None = None,
) -> Seq2SeqData:
    """User data: three ``.tsv``/``.jsonl`` pairs files (see `read_pairs_rows`), their columns named
    by ``columns`` (default ``source,target``); a ``category`` column fills ``categories``."""
    names = DEFAULT_COLUMNS if columns is None else parse_columns(columns)
    rows = {
        split: read_pairs_rows(path, names) for split, path in zip(SPLITS, (train, valid, test), strict=True)
    }
    pairs = {
        split: [(row["source"], row["target"]) for row in split_rows] for split, split_rows in rows.items()
    }
    categories = {}
    if CATEGORY_COLUMN in names:
        categories = {
            split: [row[CATEGORY_COLUMN] for row in split_rows] for split, split_rows in rows.items()
        }
    return Seq2SeqData(name=name, **pairs, categories=categories)


# ----------------------------------------------------------------------------- GeoQuery


def substitute_variables(text: str, variables: dict[str, str]) -> str:
    """Replace each placeholder name (e.g. ``state_name0``, ``var0``) by its value, all at once.

    A placeholder matches only as a whole name (not inside a longer identifier such as
    ``var01``), including inside quotes as in SQL (``"state_name0"``).

    >>> substitute_variables('SELECT x WHERE s = "state_name0" ;', {"state_name0": "new york"})
    'SELECT x WHERE s = "new york" ;'
    """
    if not variables:
        return text
    names = sorted(variables, key=len, reverse=True)
    pattern = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, names)) + r")(?![A-Za-z0-9_])")
    return pattern.sub(lambda match: variables[match.group(1)], text)


def _geoquery_pairs(path: Path, entries: Any, split: str, form: str) -> dict[str, list[Pair]]:
    out: dict[str, list[Pair]] = {"train": [], "dev": [], "test": []}
    if not isinstance(entries, list):
        raise DataFormatError(path, "expected a JSON list of query entries")
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        try:
            meaning = entry[form][0]
            query_split = entry["query-split"]
            sentences = entry["sentences"]
            for sentence in sentences:
                part = sentence["question-split"] if split == "question" else query_split
                if part not in out:
                    raise DataFormatError(path, f"{where}: unknown split label {part!r}")
                variables = sentence["variables"]
                if not isinstance(variables, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
                ):
                    raise DataFormatError(path, f"{where}: variables must map names to strings")
                if not isinstance(meaning, str) or not isinstance(sentence["text"], str):
                    raise DataFormatError(
                        path, f"{where}: question and meaning representation must be strings"
                    )
                source = " ".join(substitute_variables(sentence["text"], variables).split())
                target = " ".join(substitute_variables(meaning, variables).split())
                if not source or not target:
                    raise DataFormatError(path, f"{where}: empty question or meaning representation")
                out[part].append((source, target))
        except (KeyError, IndexError, TypeError) as error:
            raise DataFormatError(
                path, f"{where}: not a GeoQuery entry with {form!r}, query-split and sentences ({error!r})"
            ) from None
    return out


def load_geoquery(data_dir: str | Path, split: str = "query", form: str = "logic") -> Seq2SeqData:
    """GeoQuery (Geo880) with the question or query split of Finegan-Dollak et al. (2018).

    Each question is paired with the first meaning representation of its entry, and the
    placeholders (``var0``, ``state_name0``, ...) are replaced by the question's own values in both
    (as GECA and SeqMix did), so the model must produce the real names.

    Args:
        data_dir: folder holding ``geography-logic.json`` and/or ``geography.json``.
        split: ``"question"`` (questions split at random) or ``"query"`` (no meaning
            representation shared between train and test).
        form: ``"logic"`` (Prolog-style logical forms, as GECA/SeqMix) or ``"sql"``.

    Returns:
        Seq2SeqData with the train, dev (as ``valid``) and test questions.

    Raises:
        ValueError: unknown split or form (lists the valid ones).
        DataFormatError: file missing or malformed.
    """
    if split not in GEOQUERY_SPLITS:
        raise ValueError(f"unknown GeoQuery split {split!r}; valid splits: {', '.join(GEOQUERY_SPLITS)}")
    if form not in GEOQUERY_FORMS:
        raise ValueError(f"unknown GeoQuery form {form!r}; valid forms: {', '.join(GEOQUERY_FORMS)}")
    path = Path(data_dir) / _GEOQUERY_FILES[form]
    data = read_bytes(path)
    try:
        entries = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataFormatError(path, "not valid UTF-8", line) from None
    except json.JSONDecodeError as error:
        raise DataFormatError(path, f"not valid JSON ({error.msg})", error.lineno) from None
    except (ValueError, RecursionError) as error:  # too many digits in a number, nested too deeply
        raise DataFormatError(path, f"not valid JSON ({error or 'nested too deeply'})") from None
    parts = _geoquery_pairs(path, entries, split, form)
    for name, pairs in parts.items():
        if not pairs:
            raise DataFormatError(path, f"the {split} split has no {name} questions")
    return Seq2SeqData(
        name=f"geoquery-{split}-{form}", train=parts["train"], valid=parts["dev"], test=parts["test"]
    )


def take(pairs: Sequence[Pair], limit: int | None) -> list[Pair]:
    """The first ``limit`` pairs (all when None): for quick runs on a slice of a data set."""
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be > 0, got {limit}")
    return list(pairs if limit is None else pairs[:limit])
