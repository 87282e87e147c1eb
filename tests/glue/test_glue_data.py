"""GLUE loading: every task's official TSV layout (inline fixtures and the shared files), the Hub fallback, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deltamix.core.errors import DataFormatError, DataUnavailableError
from deltamix.data.glue import GLUE_TASKS, get_task, load_glue, read_tsv, split_names

MNLI_TRAIN_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label"
)
MNLI_DEV_HEADER = (
    "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\t"
    "sentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label"
)


def _mnli_row(i: int, premise: str, hypothesis: str, gold: str, dev: bool) -> str:
    parses = "( ( x ) )\t( ( y ) )\t(ROOT (S x))\t(ROOT (S y))"
    labels = "\t".join([gold] * 5) if dev else gold
    return f"{i}\t31193\t31193n\tgovernment\t{parses}\t{premise}\t{hypothesis}\t{labels}\t{gold}"


# Files in the layout of download_glue_data.py, with the quirks of the real ones: CoLA without
# header, bare quotes, a BOM, CRLF line ends (QNLI), MNLI with 12 (train) and 16 (dev) columns.
INLINE = {
    "CoLA": {
        "train.tsv": "gj04\t1\t\tOur friends won't buy this analysis, let alone the next one we propose.\n"
        'gj04\t0\t*\tThey drank the pub "dry.\n'
        "gj04\t1\t\tThe more we study verbs, the crazier they get.\n",
        "dev.tsv": 'gj04\t0\t*\tThe sailors rode the breeze clear of the rocks "\n',
    },
    "QQP": {
        "train.tsv": "\ufeffid\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        '133273\t213221\t213222\tHow is the life of a "math student?\tWhich level of prepration is enough?\t0\n'
        "402555\t536040\t536041\tHow do I control my horny emotions?\tHow do you control your horniness?\t1\n",
        "dev.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        "201359\t303345\t303346\tWhy are African-Americans so beautiful?\tWhy are hispanics so beautiful?\t0\n",
    },
    "MNLI": {
        "train.tsv": MNLI_TRAIN_HEADER
        + "\n"
        + _mnli_row(
            0,
            "Conceptually cream skimming has two basic dimensions.",
            "Product and geography.",
            "neutral",
            False,
        )
        + "\n"
        + _mnli_row(1, 'you know "during the season', "You lose the things.", "entailment", False)
        + "\n",
        "dev_matched.tsv": MNLI_DEV_HEADER
        + "\n"
        + _mnli_row(0, "The new rights are nice enough", "Everyone really likes them.", "contradiction", True)
        + "\n",
        "dev_mismatched.tsv": MNLI_DEV_HEADER
        + "\n"
        + _mnli_row(0, "Your contribution helped.", "It helped.", "entailment", True)
        + "\n"
        + _mnli_row(1, "The answer is no.", "It is yes.", "contradiction", True)
        + "\n",
    },
    "QNLI": {
        "train.tsv": "index\tquestion\tsentence\tlabel\r\n"
        "0\tWhen did the third Digimon series begin?\tUnlike the two seasons before it, it was darker.\tnot_entailment\r\n"
        '1\tWhich missile batteries often have individual launchers?\tThe effective range is 5 ".\tentailment\r\n',
        "dev.tsv": "index\tquestion\tsentence\tlabel\r\n0\tWhat came into force?\tThe treaty did.\tentailment\r\n",
    },
    "WNLI": {
        "train.tsv": "index\tsentence1\tsentence2\tlabel\n"
        "0\tI stuck a pin through a carrot. When I pulled the pin out, it had a hole.\tThe carrot had a hole.\t1\n"
        "1\tJohn couldn't see the stage with Billy in front of him because he is so short.\tJohn is so short.\t1\n"
        "2\tThe police arrested all of the gang members.\tThe police were trying to stop the drug trade.\t0\n",
        "dev.tsv": "index\tsentence1\tsentence2\tlabel\n0\tThe drain is clogged with hair.\tThe hair has to be cleaned.\t0\n",
    },
}


@pytest.fixture()
def inline_dir(tmp_path: Path) -> Path:
    for folder, files in INLINE.items():
        (tmp_path / folder).mkdir()
        for name, text in files.items():
            (tmp_path / folder / name).write_bytes(text.encode("utf-8"))
    return tmp_path


def test_cola_has_no_header_and_keeps_quotes(inline_dir: Path) -> None:
    data = load_glue("cola", inline_dir)
    assert list(data) == ["train", "validation"]
    assert data["train"]["label"] == [1, 0, 1]
    assert data["train"][1]["sentence"] == 'They drank the pub "dry.'
    assert data["validation"]["sentence"] == ['The sailors rode the breeze clear of the rocks "']
    assert data["train"].features["label"].names == ["unacceptable", "acceptable"]
    assert data["train"]["idx"] == [0, 1, 2]


def test_qqp_with_bom_and_bare_quote(inline_dir: Path) -> None:
    data = load_glue("QQP", inline_dir)
    assert data["train"]["question1"][0] == 'How is the life of a "math student?'
    assert data["train"]["label"] == [0, 1]
    assert data["validation"]["question2"] == ["Why are hispanics so beautiful?"]


def test_mnli_matched_and_mismatched(inline_dir: Path) -> None:
    data = load_glue("mnli", inline_dir)
    assert list(data) == ["train", "validation_matched", "validation_mismatched"]
    assert split_names("mnli") == ("train", "validation_matched", "validation_mismatched")
    assert data["train"]["label"] == [1, 0]  # neutral, entailment (Hub order)
    assert data["train"]["premise"][1] == 'you know "during the season'
    assert data["validation_matched"]["label"] == [2]
    assert data["validation_mismatched"]["hypothesis"] == ["It helped.", "It is yes."]


def test_qnli_crlf_line_ends(inline_dir: Path) -> None:
    data = load_glue("qnli", inline_dir)
    assert data["train"]["label"] == [1, 0]
    assert data["train"]["sentence"][1] == 'The effective range is 5 ".'
    assert not any(s.endswith("\r") for s in data["train"]["sentence"])


def test_wnli_label_order_matches_hub(inline_dir: Path) -> None:
    data = load_glue("wnli", inline_dir)
    assert data["train"]["label"] == [1, 1, 0]
    assert data["train"].features["label"].names == ["not_entailment", "entailment"]


def test_task_folder_itself_is_accepted(inline_dir: Path) -> None:
    assert len(load_glue("wnli", inline_dir / "WNLI")["train"]) == 3


@pytest.mark.parametrize(
    ("task", "train", "dev"),
    [("sst2", 67_349, 872), ("mrpc", 3_668, 408), ("rte", 2_490, 277), ("stsb", 5_749, 1_500)],
)
def test_shared_files_have_official_sizes(glue_dir: Path, task: str, train: int, dev: int) -> None:
    data = load_glue(task, glue_dir)
    assert (len(data["train"]), len(data["validation"])) == (train, dev)


def test_shared_files_first_rows(glue_dir: Path) -> None:
    mrpc = load_glue("mrpc", glue_dir)["train"][0]  # file starts with a BOM
    assert mrpc["label"] == 1 and mrpc["sentence1"].startswith("Amrozi accused his brother")
    assert mrpc["sentence1"].count('"') == 2
    sst2 = load_glue("sst2", glue_dir)["train"][0]
    assert sst2 == {"sentence": "hide new secretions from the parental units ", "label": 0, "idx": 0}
    stsb = load_glue("stsb", glue_dir)["validation"][0]
    assert stsb["sentence2"] == "A man wearing a hard hat is dancing." and stsb["label"] == pytest.approx(5.0)
    rte = load_glue("rte", glue_dir)
    assert rte["train"][0]["label"] == 1 and rte["train"].features["label"].names[1] == "not_entailment"
    assert sum(rte["validation"]["label"]) == 131  # not_entailment count of the official dev set


def test_task_names() -> None:
    assert get_task("SST-2").name == get_task("sst-2").name == "sst2"
    assert get_task("STS-B").is_regression and get_task("stsb").num_labels == 1
    assert get_task("MNLI").num_labels == 3
    assert sorted(GLUE_TASKS) == sorted(
        ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]
    )


def test_unknown_task_lists_tasks() -> None:
    with pytest.raises(ValueError, match=r"unknown GLUE task 'squad'.*cola, sst2"):
        load_glue("squad", "anywhere")


def test_missing_folder_and_file(tmp_path: Path) -> None:
    with pytest.raises(DataUnavailableError, match=r"RTE/train\.tsv"):
        load_glue("rte", tmp_path)
    (tmp_path / "RTE").mkdir()
    (tmp_path / "RTE" / "train.tsv").write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n")
    with pytest.raises(DataUnavailableError, match=r"dev\.tsv not found"):
        load_glue("rte", tmp_path)


def test_malformed_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tonly two\tentailment\n")
    with pytest.raises(
        DataFormatError, match=r"train.tsv, line 3: expected 4 tab-separated columns"
    ) as error:
        read_tsv("rte", path)
    assert error.value.line == 3 and error.value.path == str(path)


def test_unknown_label_names_file_line_and_label(tmp_path: Path) -> None:
    path = tmp_path / "dev.tsv"
    path.write_text("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tneutral\n")
    with pytest.raises(DataFormatError, match=r"dev.tsv, line 3: unknown label 'neutral' for RTE"):
        read_tsv("rte", path)
    cola = tmp_path / "cola.tsv"
    cola.write_text("gj04\t1\t\tfine.\ngj04\t*\t\tbad label column.\n")
    with pytest.raises(DataFormatError, match=r"line 2: unknown label '\*'"):
        read_tsv("cola", cola)
    stsb = tmp_path / "stsb.tsv"
    stsb.write_text("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
                    "0\tg\tf\ty\t0\tn\tn\ta\tb\tfive\n")  # fmt: skip
    with pytest.raises(DataFormatError, match=r"line 2: label 'five' is not a number"):
        read_tsv("stsb", stsb)


def test_header_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nnice\t1\n")  # an SST-2 file given as RTE
    with pytest.raises(DataFormatError, match="line 1: header does not match the RTE layout"):
        read_tsv("rte", path)


def test_offline_without_data_dir_says_how_to_use_local_files(tmp_path: Path) -> None:
    code = (
        "from deltamix.data.glue import load_glue\n"
        "from deltamix.core.errors import DataUnavailableError\n"
        "try:\n    load_glue('rte')\nexcept DataUnavailableError as e:\n    print('ERR', e)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.startswith("ERR could not load GLUE RTE from the Hugging Face Hub"), out.stderr[-2000:]
    assert "--data-dir" in out.stdout and "DIR/RTE/train.tsv" in out.stdout
