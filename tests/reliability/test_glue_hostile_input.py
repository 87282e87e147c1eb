"""Property tests: any bytes given to the GLUE TSV reader load or raise DataFormatError naming file and line."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltamix.core.errors import DataFormatError
from deltamix.data.glue import GLUE_TASKS, get_task, read_tsv

from .conftest import no_hang

# Bounded, and no deadline (shared, loaded machine); a hang is caught by the alarm below.
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces of real GLUE rows, so that fuzzed files get past the header check and into the rows.
FRAGMENTS = [
    b"\n", b"\r\n", b"\r", b"\t", b" ", b"0", b"1", b"2", b"3.8", b"-1", b"nan", b"inf", b"1e999", b"1_0",
    b"entailment", b"not_entailment", b"neutral", b"contradiction", b'"', b"'", b"\xef\xbb\xbf", b"\xff",
    b"\xc3\xa9", b"\xe9", b"\x00", b"\xe2\x80\xa8", b"\x85", b"a sentence .", b"x" * 3000,
    b"index\tsentence1\tsentence2\tlabel", b"index\tsentence\tlabel", b"sentence\tlabel",
    b"index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
    b"id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate", b"index\tquestion\tsentence\tlabel",
    b"Quality\t#1 ID\t#2 ID\t#1 String\t#2 String", b"gj04\t1\t\tthe sentence .",
]  # fmt: skip
BYTES = st.one_of(st.binary(max_size=300), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map(b"".join))


@FUZZ
@given(task=st.sampled_from(sorted(GLUE_TASKS)), data=BYTES)
def test_tsv_reader_loads_or_names_file_and_line(task: str, data: bytes) -> None:
    spec = get_task(task)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "train.tsv"
        path.write_bytes(data)
        try:
            with no_hang():
                columns = read_tsv(spec, path)
        except DataFormatError as error:
            assert error.path == str(path) and str(error).startswith(str(path)), error
            assert error.line is not None and 1 <= error.line <= data.count(b"\n") + 1, error
            return
    # Whole rows only: every column as long as the labels, labels valid for the task.
    rows = len(columns["label"])
    assert all(len(values) == rows for values in columns.values())
    assert columns["idx"] == list(range(rows))
    for label in columns["label"]:
        if spec.is_regression:
            assert isinstance(label, float) and math.isfinite(label)
        else:
            assert label in set((spec.tsv_labels or {}).values())
    for name in spec.text_columns:
        assert all(isinstance(text, str) and "\t" not in text and "\n" not in text for text in columns[name])


@pytest.mark.parametrize(
    ("task", "data", "line", "message"),
    [
        ("rte", b"index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\ta\xff\tb\tentailment\n", 3, "UTF-8"),
        ("stsb", b"h\t1\t2\t3\t4\t5\t6\t7\t8\tscore\n".replace(b"7\t8", b"sentence1\tsentence2")
         + b"0\tg\tf\ty\t0\ts\ts\ta\tb\tnan\n", 2, "not a finite number"),
        ("stsb", b"index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
         + b"0\tg\tf\ty\t0\ts\ts\ta\tb\tinf\n", 2, "not a finite number"),
    ],
)  # fmt: skip
def test_known_bad_bytes_name_their_line(
    task: str, data: bytes, line: int, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "dev.tsv"
    path.write_bytes(data)
    with pytest.raises(DataFormatError, match=message) as info:
        read_tsv(task, path)
    assert info.value.line == line and info.value.path == str(path)
