"""Seq2seq readers: Multi30k, parallel text, TSV/JSONL, GeoQuery, Hub fallback, and every bad input."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest

from deltamix.core.errors import DataFormatError, DataUnavailableError
from deltamix.data.seq2seq import (
    Seq2SeqData,
    load_geoquery,
    load_hub_translation,
    load_multi30k,
    load_pair_files,
    load_parallel_dir,
    load_translation,
    read_lines,
    read_pairs_file,
    read_parallel,
    substitute_variables,
)
from deltamix.training.metrics import exact_match

# ----------------------------------------------------------------------------- real data


def test_multi30k_sizes_and_alignment(shared_data) -> None:
    data = load_multi30k(shared_data("multi30k"))
    assert data.sizes() == {"train": 29000, "valid": 1014, "test": 1000}
    assert data.name == "multi30k-de-en"
    assert data.train[0] == (
        "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche.",
        "Two young, White males are outside near many bushes.",
    )
    assert data.test[0][1] == "A man in an orange hat starring at something."
    # The raw folder itself is accepted too.
    assert load_multi30k(shared_data("multi30k") / "raw").test[0] == data.test[0]
    assert load_translation("multi30k", shared_data("multi30k")).valid == data.valid


@pytest.mark.parametrize(
    ("split", "form", "sizes"),
    [
        ("question", "logic", {"train": 549, "valid": 49, "test": 279}),
        ("query", "logic", {"train": 543, "valid": 148, "test": 186}),
        ("question", "sql", {"train": 549, "valid": 49, "test": 279}),
        ("query", "sql", {"train": 536, "valid": 159, "test": 182}),
    ],
)
def test_geoquery_split_sizes_match_source_md(split: str, form: str, sizes: dict, shared_data) -> None:
    data = load_geoquery(shared_data("geoquery"), split, form)
    assert data.sizes() == sizes
    assert data.name == f"geoquery-{split}-{form}"
    # Every placeholder is substituted: none of the names are left in questions or meaning representations.
    for source, target in data.train + data.valid + data.test:
        for text in (source, target):
            assert "var0" not in text and "state_name0" not in text and "city_name0" not in text


def test_geoquery_query_split_separates_meaning_templates(shared_data) -> None:
    """The query split: no (placeholder) meaning representation is both in train and test."""
    entries = json.loads((shared_data("geoquery") / "geography-logic.json").read_text(encoding="utf-8"))
    train = {e["logic"][0] for e in entries if e["query-split"] == "train"}
    test = {e["logic"][0] for e in entries if e["query-split"] == "test"}
    assert not train & test
    data = load_geoquery(shared_data("geoquery"), "query", "logic")
    assert (
        "what is the capital of california",
        "( A , ( _capital ( A ) , _loc ( A , B ) , _const ( B , _stateid ( california ) ) ) )",
    ) in data.test


def test_geoquery_sql_substitutes_inside_quotes(shared_data) -> None:
    data = load_geoquery(shared_data("geoquery"), "question", "sql")
    _, target = next(p for p in data.valid if p[0] == "what is the biggest city in arizona")
    assert target == (
        "SELECT CITYalias0.CITY_NAME FROM CITY AS CITYalias0 WHERE CITYalias0.POPULATION = ( SELECT "
        'MAX( CITYalias1.POPULATION ) FROM CITY AS CITYalias1 WHERE CITYalias1.STATE_NAME = "arizona" ) '
        'AND CITYalias0.STATE_NAME = "arizona" ;'
    )


def test_geoquery_unknown_split_or_form_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="valid splits: question, query"):
        load_geoquery(tmp_path, "random")  # refused before any file is read
    with pytest.raises(ValueError, match="valid forms: logic, sql"):
        load_geoquery(tmp_path, "query", "lambda")


def test_geoquery_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"geography-logic\.json: file not found"):
        load_geoquery(tmp_path)
    (tmp_path / "geography-logic.json").write_text(
        '[{"logic": ["x"],\n "query-split": "train"\n', encoding="utf-8"
    )
    with pytest.raises(DataFormatError, match="not valid JSON") as info:
        load_geoquery(tmp_path)
    assert info.value.line == 3
    (tmp_path / "geography-logic.json").write_text(
        '[{"logic": ["x"], "query-split": "train"}]', encoding="utf-8"
    )
    with pytest.raises(DataFormatError, match="entry 0: not a GeoQuery entry"):
        load_geoquery(tmp_path)
    entry = '{"logic": [{}], "query-split": "train", "sentences": [{"text": "a", "variables": {}, "question-split": "train"}]}'
    (tmp_path / "geography-logic.json").write_text(f"[{entry}]", encoding="utf-8")
    with pytest.raises(DataFormatError, match="entry 0: question and meaning representation must be strings"):
        load_geoquery(tmp_path)
    (tmp_path / "geography-logic.json").write_bytes(b'[{"logic": ["caf\xe9"]}]')
    with pytest.raises(DataFormatError, match="not valid UTF-8"):
        load_geoquery(tmp_path)


def test_substitute_variables_whole_names_only() -> None:
    variables = {"var0": "new york", "var1": "texas"}
    assert substitute_variables("_const ( B , var0 ) var1 var01 xvar0", variables) == (
        "_const ( B , new york ) texas var01 xvar0"
    )
    assert substitute_variables('S = "state_name0" ;', {"state_name0": "ohio"}) == 'S = "ohio" ;'
    # Simultaneous: a value that looks like another name is not substituted again.
    assert substitute_variables("var0 var1", {"var0": "var1", "var1": "b"}) == "var1 b"


def test_exact_match_hand_checked_geoquery_cases() -> None:
    gold = ["( A , _capital ( A ) )", "( A , ( _city ( A ) , _const ( A , _stateid ( texas ) ) ) )"]
    # Extra spaces are normalised; a different constant is wrong.
    assert exact_match(["( A ,  _capital ( A ) ) ", gold[1]], gold) == 1.0
    assert exact_match([gold[0], gold[1].replace("texas", "ohio")], gold) == 0.5
    assert exact_match(["( A , _capital ( A )", "x"], gold) == 0.0


# ----------------------------------------------------------------------------- local files


def _write(path: Path, text: str | bytes, compress: bool = False) -> Path:
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def test_parallel_dir_with_aliases_and_gzip(tmp_path: Path) -> None:
    for split, name in (("train", "train"), ("valid", "dev"), ("test", "test")):
        _write(tmp_path / f"{name}.de.gz", f"ein {split}\nzwei {split}\n", compress=True)
        _write(tmp_path / f"{name}.en", f"one {split}\r\ntwo {split}")  # CRLF, no final newline
    data = load_parallel_dir(tmp_path, "de", "en")
    assert data.valid == [("ein valid", "one valid"), ("zwei valid", "two valid")]
    assert data.sizes() == {"train": 2, "valid": 2, "test": 2}
    assert load_translation("my-iwslt", tmp_path).name == "my-iwslt-de-en"


def test_parallel_dir_missing_file_names_folder_and_candidates(tmp_path: Path) -> None:
    _write(tmp_path / "train.de", "a\n")
    with pytest.raises(
        DataFormatError, match=r"no train file for language 'en' \(looked for train\.en\[\.gz\]\)"
    ):
        load_parallel_dir(tmp_path, "de", "en")
    with pytest.raises(DataFormatError, match="data folder not found"):
        load_parallel_dir(tmp_path / "absent", "de", "en")


def test_parallel_files_of_unequal_length(tmp_path: Path) -> None:
    src = _write(tmp_path / "a.de", "eins\nzwei\ndrei\n")
    tgt = _write(tmp_path / "a.en", "one\ntwo\n")
    with pytest.raises(DataFormatError, match="parallel files differ in length: 3 source lines") as info:
        read_parallel(src, tgt)
    assert info.value.path == str(tgt) and info.value.line == 3


def test_empty_line_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "x.en", "one\n   \nthree\n")
    with pytest.raises(DataFormatError, match=r"x\.en, line 2: empty line"):
        read_lines(path)
    with pytest.raises(DataFormatError, match="holds no lines"):
        read_lines(_write(tmp_path / "empty.en", ""))


def test_wrong_encoding_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "latin1.de", "gut\nM\u00e4dchen\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin1\.de, line 2: not valid UTF-8") as info:
        read_lines(path)
    assert info.value.line == 2
    # A UTF-8 byte-order mark is fine.
    assert read_lines(_write(tmp_path / "bom.de", "\ufeffM\u00e4dchen\n")) == ["M\u00e4dchen"]


def test_lines_from_a_stream_are_checked_like_a_file() -> None:
    stream = io.BytesIO("\ufeffwalk\r\n jump twice \n".encode())
    assert read_lines(stream) == ["walk", "jump twice"]
    stdin_like = io.BytesIO(b"walk\n\njump\n")
    stdin_like.name = "<stdin>"
    with pytest.raises(DataFormatError, match=r"<stdin>, line 2: empty line"):
        read_lines(stdin_like)
    with pytest.raises(DataFormatError, match=r"<stream>, line 1: not valid UTF-8"):
        read_lines(io.BytesIO("M\u00e4dchen\n".encode("latin-1")))


def test_missing_and_corrupt_gzip(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        read_lines(tmp_path / "nope.de")
    with pytest.raises(DataFormatError, match="not a valid gzip file"):
        read_lines(_write(tmp_path / "bad.de.gz", b"not gzip at all"))
    truncated = gzip.compress(b"line one\nline two\n" * 50)[:-12]
    with pytest.raises(DataFormatError, match="not a valid gzip file"):
        read_lines(_write(tmp_path / "cut.de.gz", truncated))


def test_tsv_and_jsonl_pairs(tmp_path: Path) -> None:
    tsv = _write(tmp_path / "train.tsv", "source\ttarget\nwalk twice\tWALK WALK\n jump \tJUMP\n")
    assert read_pairs_file(tsv) == [("walk twice", "WALK WALK"), ("jump", "JUMP")]
    jsonl = _write(
        tmp_path / "dev.jsonl.gz",
        '{"source": "walk", "target": "WALK", "id": 7}\n{"target": "JUMP", "source": "jump"}\n',
        compress=True,
    )
    assert read_pairs_file(jsonl) == [("walk", "WALK"), ("jump", "JUMP")]
    data = load_pair_files(tsv, jsonl, tsv, name="toy")
    assert isinstance(data, Seq2SeqData) and data.sizes() == {"train": 2, "valid": 2, "test": 2}


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("a\tb\nc d\n", 2, "expected 2 tab-separated fields"),
        ("a\tb\nc\td\te\n", 2, "found 3"),
        ("a\tb\n\t\n", 2, "empty line|empty source"),
        ("a\tb\nc\t \n", 2, "empty target"),
        ("a\tb\n\nc\td\n", 2, "empty line"),
    ],
)
def test_malformed_tsv_rows(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = _write(tmp_path / "bad.tsv", content)
    with pytest.raises(DataFormatError, match=message) as info:
        read_pairs_file(path)
    assert info.value.line == line and info.value.path == str(path)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ('{"source": "a", "target": "b"}\n{"source": "a", \n', 2, "not valid JSON"),
        ('{"source": "a", "target": "b"}\n["a", "b"]\n', 2, "expected a JSON object, got list"),
        ('{"source": "a"}\n', 1, "missing key"),
        ('{"source": "a", "target": 3}\n', 1, "target must be a string, got int"),
        ('{"source": "", "target": "b"}\n', 1, "empty source"),
        ('{"source": "a", "target": "b"}\n\n', 2, "empty line"),
        ('{"source": "a", "target": ' + "1" * 5000 + "}\n", 1, "not valid JSON"),  # over int digit limit
        ("[" * 100_000 + "\n", 1, "not valid JSON"),  # nested too deeply
    ],
)
def test_malformed_jsonl_rows(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", content)
    with pytest.raises(DataFormatError, match=message) as info:
        read_pairs_file(path)
    assert info.value.line == line


def test_pairs_file_wrong_encoding_and_unknown_suffix(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.tsv", b"a\tb\n" + "c\tM\u00e4dchen\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match="line 2: not valid UTF-8"):
        read_pairs_file(path)
    with pytest.raises(DataFormatError, match=r"name the file \*\.tsv or \*\.jsonl"):
        read_pairs_file(_write(tmp_path / "data.csv", "a,b\n"))


def test_split_lookup_rejects_unknown_name() -> None:
    data = Seq2SeqData("x", [("a", "b")], [("c", "d")], [("e", "f")])
    assert data.split("valid") == [("c", "d")]
    with pytest.raises(ValueError, match="valid splits: train, valid, test"):
        data.split("dev")


def test_hub_offline_raises_data_unavailable_with_data_dir_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise ConnectionError("offline mode is enabled")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataUnavailableError, match=r"bbaaaa/iwslt14-de-en.*--data-dir"):
        load_hub_translation("iwslt14", "de", "en")
    with pytest.raises(DataUnavailableError, match="--data-dir"):
        load_translation("someone/some-pairs")


def test_hub_rows_in_translation_column(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    def fake(hub_id: str, config: str | None) -> datasets.DatasetDict:
        def rows(n: int) -> datasets.Dataset:
            return datasets.Dataset.from_dict(
                {"translation": [{"de": f"satz {i}", "en": f"sentence {i}"} for i in range(n)]}
            )

        return datasets.DatasetDict({"train": rows(3), "validation": rows(2), "test": rows(1)})

    monkeypatch.setattr(datasets, "load_dataset", fake)
    data = load_hub_translation("iwslt14", "de", "en")
    assert data.sizes() == {"train": 3, "valid": 2, "test": 1}
    assert data.train[2] == ("satz 2", "sentence 2")
    with pytest.raises(DataFormatError, match="row has no language 'fr'"):
        load_hub_translation("iwslt14", "de", "fr")


def test_named_columns_read_cogs_style_files_and_keep_the_category(tmp_path: Path) -> None:
    """COGS-style TSVs carry a third column (the generalisation type): named, it is read and kept."""
    tsv = tmp_path / "gen.tsv"
    tsv.write_text("source\ttarget\tcategory\nA cat ran .\tcat ( x ) AND run ( x )\tin_distribution\n"
                   "Emma saw .\tsee ( Emma )\tsubj_to_obj\n", encoding="utf-8")  # fmt: skip
    with pytest.raises(
        DataFormatError, match=r"expected 2 tab-separated fields .* found 3; name the columns"
    ):
        load_pair_files(tsv, tsv, tsv)
    data = load_pair_files(tsv, tsv, tsv, columns="source,target,category")
    assert data.test == [("A cat ran .", "cat ( x ) AND run ( x )"), ("Emma saw .", "see ( Emma )")]
    assert data.categories["test"] == ["in_distribution", "subj_to_obj"]
    plain = tmp_path / "plain.tsv"  # no header line
    plain.write_text("".join(line + "\n" for line in tsv.read_text().splitlines()[1:]), encoding="utf-8")
    ignored = load_pair_files(plain, plain, plain, columns=["source", "target", "kind"])  # read, not kept
    assert ignored.train == data.train and ignored.categories == {}
    swapped = load_pair_files(plain, plain, plain, columns="target,source,category")
    assert swapped.valid[1] == ("see ( Emma )", "Emma saw .")
    jsonl = tmp_path / "gen.jsonl"
    jsonl.write_text(json.dumps({"source": "a", "target": "A", "category": 3}) + "\n", encoding="utf-8")
    assert load_pair_files(jsonl, jsonl, jsonl, columns="source,target,category").categories["train"] == ["3"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ("source", "must name target"),
        ("a,b", "must name source and target"),
        ("source,target,source", "distinct"),
    ],
)
def test_bad_column_names_are_refused(tmp_path: Path, columns: str, message: str) -> None:
    tsv = tmp_path / "p.tsv"
    tsv.write_text("a\tb\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_pair_files(tsv, tsv, tsv, columns=columns)
