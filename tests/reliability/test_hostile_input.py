"""Property tests: any bytes given to the seq2seq and SCAN readers load or raise DataFormatError naming file and line."""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltamix.core.errors import DataFormatError
from deltamix.data.scan import read_scan_file
from deltamix.data.seq2seq import read_jsonl_pairs, read_pairs_file, read_parallel, read_tsv_pairs

from .conftest import no_hang

# Bounded, and no deadline: the machine is shared and loaded; a hang is caught by the alarm below.
EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fragments that make near-valid files (random bytes alone rarely get past the first check).
FRAGMENTS = [
    b"\n", b"\r\n", b"\t", b" ", b"IN:", b"OUT:", b"jump", b"I_JUMP", b"twice", b"source", b"target",
    b'{"source": "a", "target": "b"}', b'{"source": ', b'"x"', b"}", b"[", b"]", b"null", b"1e999",
    b'"\\ud800"', b"\xef\xbb\xbf", b"\xff", b"\xc3\xa9", b"\x00", b"\xe2\x80\xa8", b"9" * 5000, b"[" * 3000,
]  # fmt: skip
BYTES = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join),
)


def _loads_or_names_the_fault(read: Callable[[], list[tuple[str, str]]], files: list[Path]) -> None:
    """The reader returns well-formed pairs, or raises DataFormatError that names one of ``files``."""
    try:
        with no_hang():
            pairs = read()
    except DataFormatError as error:
        assert error.path in {str(f) for f in files}, error
        assert str(error).startswith(error.path)
        assert error.line is None or error.line >= 1
        return
    assert isinstance(pairs, list)
    for source, target in pairs:  # whole pairs only: non-empty, stripped, encodable text
        for text in (source, target):
            assert isinstance(text, str) and text and text == text.strip()
            text.encode("utf-8")


def _write(folder: str, name: str, data: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(data)
    return path


@FUZZ
@given(data=BYTES, compress=st.booleans())
def test_tsv_pairs(data: bytes, compress: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(
            folder, "pairs.tsv.gz" if compress else "pairs.tsv", gzip.compress(data) if compress else data
        )
        _loads_or_names_the_fault(lambda: read_tsv_pairs(path), [path])


@FUZZ
@given(data=BYTES)
def test_jsonl_pairs(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "pairs.jsonl", data)
        _loads_or_names_the_fault(lambda: read_jsonl_pairs(path), [path])


@FUZZ
@given(data=BYTES, name=st.sampled_from(["x.tsv", "x.jsonl", "x.ndjson.gz", "x.txt", "x.gz"]))
def test_pairs_file_by_name(data: bytes, name: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, name, data)  # .gz holding bytes that are not gzip: must be a clean error
        _loads_or_names_the_fault(lambda: read_pairs_file(path), [path])


@FUZZ
@given(source=BYTES, target=BYTES)
def test_parallel_text(source: bytes, target: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        src, tgt = _write(folder, "train.de", source), _write(folder, "train.en", target)
        _loads_or_names_the_fault(lambda: read_parallel(src, tgt), [src, tgt])


@FUZZ
@given(data=BYTES)
def test_scan_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = _write(folder, "tasks_train.txt", data)
        _loads_or_names_the_fault(lambda: read_scan_file(path), [path])


@pytest.mark.parametrize(
    ("read", "name", "data", "line"),
    [
        (read_scan_file, "s.txt", b"IN: jump OUT: I_JUMP\nIN: walk \xff OUT: I_WALK\n", 2),
        (
            read_jsonl_pairs,
            "p.jsonl",
            b'{"source": "a", "target": "b"}\n{"source": "\\ud800", "target": "b"}\n',
            2,
        ),
        (read_tsv_pairs, "p.tsv", b"a\tb\nc\td\te\n", 2),
    ],
)
def test_known_bad_files_name_their_line(read, name: str, data: bytes, line: int, tmp_path: Path) -> None:
    path = _write(str(tmp_path), name, data)
    with pytest.raises(DataFormatError) as error:
        read(path)
    assert error.value.line == line and error.value.path == str(path)
