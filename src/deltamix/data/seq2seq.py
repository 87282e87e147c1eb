"""Readers for seq2seq data: Multi30k, IWSLT'14 and other Hub pairs, parallel text, TSV/JSONL and GeoQuery.

Every reader returns `Seq2SeqData`: three lists of ``(source, target)`` string pairs (train, valid,
test). Text is kept as in the files (stripped of surrounding whitespace); subword tokenization or
word splitting happens later (`deltamix.data.tokenization`, `deltamix.data.vocab`).

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

import gzip
import json
import logging
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from deltamix.core.errors import DataFormatError, DataUnavailableError

logger = logging.getLogger(__name__)

Pair = tuple[str, str]

# The columns of a pairs file unless named otherwise; a "category" column is kept per pair.
DEFAULT_COLUMNS = ("source", "target")
CATEGORY_COLUMN = "category"

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


# ----------------------------------------------------------------------------- low-level reading


def _read_bytes(source: str | Path | BinaryIO) -> bytes:
    """The bytes of ``source`` (a file, decompressed if its name ends in ``.gz``, or a binary stream)."""
    if hasattr(source, "read"):
        return source.read()
    path = Path(source)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataFormatError(path, f"cannot read file ({error.strerror or error})") from error
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(path, f"not a valid gzip file ({error})") from error
    return data


def source_name(source: str | Path | BinaryIO) -> str:
    """How errors name ``source``: the file's path, or a stream's name (``<stdin>`` for standard input)."""
    return str(getattr(source, "name", "<stream>")) if hasattr(source, "read") else str(source)


def read_lines(source: str | Path | BinaryIO) -> list[str]:
    """The lines of a UTF-8 text file (``.gz`` is decompressed) or binary stream (such as
    ``sys.stdin.buffer``), stripped, none of them empty.

    A UTF-8 byte-order mark at the start and ``\\r`` before ``\\n`` are accepted; one final newline
    is optional.

    Raises:
        DataFormatError: file missing or unreadable, not UTF-8 (with the line), or an empty line;
            a stream is named by its ``name`` (``<stdin>``).
    """
    lines = []
    for number, raw in decode_lines(source):
        text = raw.strip()
        if not text:
            raise DataFormatError(source_name(source), "empty line (every line must hold a sentence)", number)
        lines.append(text)
    if not lines:
        raise DataFormatError(source_name(source), "the file holds no lines")
    return lines


def read_parallel(source_path: str | Path, target_path: str | Path) -> list[Pair]:
    """Pairs from two line-aligned text files (line i of one translates line i of the other).

    Raises:
        DataFormatError: as `read_lines`, or when the files have different numbers of lines (names
            the shorter file and the first line it lacks).
    """
    sources = read_lines(source_path)
    targets = read_lines(target_path)
    if len(sources) != len(targets):
        shorter, longer = (
            (source_path, target_path) if len(sources) < len(targets) else (target_path, source_path)
        )
        raise DataFormatError(
            shorter,
            f"parallel files differ in length: {len(sources)} source lines in {source_path}, "
            f"{len(targets)} target lines in {target_path}; {longer} has a line here that this file lacks",
            min(len(sources), len(targets)) + 1,
        )
    return list(zip(sources, targets, strict=True))


def decode_lines(source: str | Path | BinaryIO) -> list[tuple[int, str]]:
    """(line number, text) of the lines of a UTF-8 file or binary stream, empty ones included
    (unstripped); a final newline does not start another line."""
    data = _read_bytes(source)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the final newline ends the last line, it does not start a new one
    out = []
    for number, raw in enumerate(raw_lines, start=1):
        try:
            out.append((number, raw.decode("utf-8").rstrip("\r")))
        except UnicodeDecodeError as error:
            raise DataFormatError(
                source_name(source),
                f"not valid UTF-8 (byte {error.start + 1} of the line); re-encode the file as UTF-8",
                number,
            ) from None
    return out


def _check_pair(path: Path, number: int, source: Any, target: Any) -> Pair:
    for name, value in (("source", source), ("target", target)):
        if not isinstance(value, str):
            raise DataFormatError(path, f"{name} must be a string, got {type(value).__name__}", number)
        if not value.strip():
            raise DataFormatError(path, f"empty {name}", number)
        try:  # JSON may escape a lone surrogate (\\ud800), which no file or tokenizer can take later
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise DataFormatError(
                path, f"{name} holds an invalid character ({error.reason})", number
            ) from None
    return source.strip(), target.strip()


def parse_columns(columns: str | Sequence[str]) -> tuple[str, ...]:
    """The column names of a pairs file, from ``"source,target,category"`` or a sequence of names.

    >>> parse_columns("source, target, category")
    ('source', 'target', 'category')

    Raises:
        ValueError: names missing ``source`` or ``target``, repeated, or empty (naming ``columns``).
    """
    names = tuple(name.strip() for name in (columns.split(",") if isinstance(columns, str) else columns))
    if any(not name for name in names) or len(set(names)) != len(names):
        raise ValueError(f"columns must be distinct non-empty names, got {columns!r}")
    missing = [name for name in DEFAULT_COLUMNS if name not in names]
    if missing:
        raise ValueError(f"columns must name {' and '.join(missing)}, got {columns!r}")
    return names


def read_tsv_rows(path: str | Path, columns: Sequence[str] = DEFAULT_COLUMNS) -> list[dict[str, str]]:
    """Rows of a TSV file as ``{column: text}``: exactly ``len(columns)`` tab-separated fields per
    line; a first line holding the column names is a header and skipped.

    Raises:
        DataFormatError: file missing, not UTF-8, empty line, a row with another number of fields or
            an empty source or target (each with its line number).
    """
    path, columns = Path(path), parse_columns(columns)
    rows = []
    for number, text in decode_lines(path):
        if not text.strip():
            raise DataFormatError(path, f"empty line (every line must hold {'<TAB>'.join(columns)})", number)
        fields = text.split("\t")
        if len(fields) != len(columns):
            hint = "" if len(fields) < len(columns) else "; name the columns (e.g. source,target,category)"
            raise DataFormatError(
                path,
                f"expected {len(columns)} tab-separated fields ({', '.join(columns)}), found {len(fields)}{hint}",
                number,
            )
        if number == 1 and [f.strip().lower() for f in fields] == [c.lower() for c in columns]:
            continue
        row = {name: value.strip() for name, value in zip(columns, fields, strict=True)}
        row["source"], row["target"] = _check_pair(
            path, number, fields[columns.index("source")], fields[columns.index("target")]
        )
        rows.append(row)
    if not rows:
        raise DataFormatError(path, "the file holds no pairs")
    return rows


def read_tsv_pairs(path: str | Path, columns: Sequence[str] = DEFAULT_COLUMNS) -> list[Pair]:
    """Pairs from a TSV file: ``source<TAB>target`` per line (exactly one tab), or the columns named
    by ``columns``; an optional header line of the column names is skipped.

    Raises:
        DataFormatError: as `read_tsv_rows`.
    """
    return [(row["source"], row["target"]) for row in read_tsv_rows(path, columns)]


def read_jsonl_rows(path: str | Path, columns: Sequence[str] = DEFAULT_COLUMNS) -> list[dict[str, str]]:
    """Rows of a JSON-lines file: one object per line holding the keys ``columns`` (``source`` and
    ``target`` strings; the others converted to text); other keys are ignored.

    Raises:
        DataFormatError: file missing, not UTF-8, empty line, invalid JSON, not an object, missing
            keys, or a non-string or empty ``source``/``target`` (each with its line number).
    """
    path, columns = Path(path), parse_columns(columns)
    rows = []
    for number, text in decode_lines(path):
        if not text.strip():
            raise DataFormatError(path, "empty line (every line must hold one JSON object)", number)
        try:
            row = json.loads(text)
        except (ValueError, RecursionError) as error:  # JSONDecodeError, too many digits, too deep
            message = (
                error.msg if isinstance(error, json.JSONDecodeError) else str(error) or "nested too deeply"
            )
            raise DataFormatError(path, f"not valid JSON ({message})", number) from None
        if not isinstance(row, dict):
            raise DataFormatError(path, f"expected a JSON object, got {type(row).__name__}", number)
        missing = [key for key in columns if key not in row]
        if missing:
            raise DataFormatError(path, f"missing key(s) {', '.join(missing)}", number)
        values = {key: str(row[key]).strip() for key in columns}
        values["source"], values["target"] = _check_pair(path, number, row["source"], row["target"])
        rows.append(values)
    if not rows:
        raise DataFormatError(path, "the file holds no pairs")
    return rows


def read_jsonl_pairs(path: str | Path) -> list[Pair]:
    """Pairs from a JSON-lines file: one object with string fields ``source`` and ``target`` per line.

    Raises:
        DataFormatError: as `read_jsonl_rows`.
    """
    return [(row["source"], row["target"]) for row in read_jsonl_rows(path)]


def _file_format(path: Path, file_format: str | None) -> str:
    if file_format is None:
        suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
        file_format = suffixes[-1].lstrip(".") if suffixes else ""
    if file_format == "tsv":
        return "tsv"
    if file_format in ("jsonl", "ndjson"):
        return "jsonl"
    raise DataFormatError(path, "unknown pairs format; name the file *.tsv or *.jsonl (optionally .gz)")


def read_pairs_rows(
    path: str | Path, columns: Sequence[str] = DEFAULT_COLUMNS, file_format: str | None = None
) -> list[dict[str, str]]:
    """Rows ``{column: text}`` of a ``.tsv`` or ``.jsonl`` file (optionally ``.gz``), chosen by suffix
    or ``file_format``.

    Raises:
        DataFormatError: unknown format, or any error of `read_tsv_rows` / `read_jsonl_rows`.
    """
    path = Path(path)
    reader = read_tsv_rows if _file_format(path, file_format) == "tsv" else read_jsonl_rows
    return reader(path, columns)


def read_pairs_file(path: str | Path, file_format: str | None = None) -> list[Pair]:
    """Pairs from a ``.tsv`` or ``.jsonl`` file (optionally ``.gz``), chosen by suffix or ``file_format``.

    Raises:
        DataFormatError: unknown format, or any error of `read_tsv_pairs` / `read_jsonl_pairs`.
    """
    return [(row["source"], row["target"]) for row in read_pairs_rows(path, file_format=file_format)]


# ----------------------------------------------------------------------------- translation


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
            pairs.append(_check_pair(Path(where), index + 1, *get(row)))
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
    data = _read_bytes(path)
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
