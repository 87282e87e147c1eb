"""Readers of pairs files, one per format: parallel text, TSV and JSONL, plain or gzip-compressed.

Each reader returns ``(source, target)`` string pairs (or, given ``columns``, one dict per row) in
file order, text stripped of surrounding whitespace. Bad input raises `DataFormatError` naming the
file and the 1-based line: a missing file, parallel files of unequal length, an empty line, bytes
that are not UTF-8, a malformed TSV or JSONL row, a corrupt gzip file.

Formats:

- Parallel text (``read_parallel``): two files, one sentence per line, line i of one the translation
  of line i of the other.
- Pairs files (``read_pairs_file``): ``.tsv`` (``source<TAB>target`` per line, an optional first
  line ``source<TAB>target`` is a header) or ``.jsonl`` (one ``{"source": ..., "target": ...}``
  object per line, other keys ignored). Files with more columns name them
  (``columns=("source", "target", "category")``), read by ``read_pairs_rows``.

The data sets built from such files (Multi30k, IWSLT'14, GeoQuery, ...) are in `deltamix.data.seq2seq`.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from deltamix.core.errors import DataFormatError

Pair = tuple[str, str]

# The columns of a pairs file unless named otherwise; a "category" column is kept per pair.
DEFAULT_COLUMNS = ("source", "target")
CATEGORY_COLUMN = "category"


def read_bytes(source: str | Path | BinaryIO) -> bytes:
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
    data = read_bytes(source)
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


def check_pair(path: Path, number: int, source: Any, target: Any) -> Pair:
    """``(source, target)`` of line ``number`` of ``path``, checked to be non-empty strings and stripped."""
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
        row["source"], row["target"] = check_pair(
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
        values["source"], values["target"] = check_pair(path, number, row["source"], row["target"])
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
