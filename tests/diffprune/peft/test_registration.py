"""Diff pruning's registration with PEFT: what registration.py relies on in PEFT, and the version pin."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import peft
import pytest
from packaging.requirements import Requirement
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING, PEFT_TYPE_TO_PREFIX_MAPPING, PEFT_TYPE_TO_TUNER_MAPPING
from peft.utils.peft_types import PeftType

import deltamix
from deltamix.diffprune.peft import DiffPruningPeftConfig, DiffPruningTuner
from deltamix.diffprune.peft.registration import PEFT_TYPE, add_peft_type, register

CHANGED = (
    "PEFT {version} changed what deltamix.diffprune.peft.registration relies on ({what}): update "
    "add_peft_type / register and the peft pin in pyproject.toml"
)


def test_the_installed_peft_is_in_the_range_pyproject_pins() -> None:
    pyproject = (Path(__file__).parents[3] / "pyproject.toml").read_text()
    (pin,) = [Requirement(r) for r in re.findall(r'^\s*"(peft[^"]*)",', pyproject, re.MULTILINE)]
    upper = [s for s in pin.specifier if s.operator in ("<", "<=", "==", "~=")]
    assert upper, "pyproject.toml must bound the PEFT versions diff pruning was verified with from above"
    assert pin.specifier.contains(peft.__version__), (
        f"PEFT {peft.__version__} is outside the verified range {pin.specifier}: run tests/diffprune/peft "
        "with it, then widen the pin"
    )


def test_diff_pruning_is_a_peft_type_peft_accepts_everywhere() -> None:
    what = {
        "a PeftType member": PEFT_TYPE is getattr(PeftType, "DIFF_PRUNING", None),
        "lookup by value": PeftType("DIFF_PRUNING") is PEFT_TYPE,
        "lookup by name": PeftType["DIFF_PRUNING"] is PEFT_TYPE,
        "listed when iterating": "DIFF_PRUNING" in list(PeftType),
        "equal to its string": PEFT_TYPE == "DIFF_PRUNING" and hash(PEFT_TYPE) == hash("DIFF_PRUNING"),
        "the config mapping": PEFT_TYPE_TO_CONFIG_MAPPING.get("DIFF_PRUNING") is DiffPruningPeftConfig,
        "the tuner mapping": PEFT_TYPE_TO_TUNER_MAPPING.get(PEFT_TYPE) is DiffPruningTuner,
        "the prefix mapping": PEFT_TYPE_TO_PREFIX_MAPPING.get(PEFT_TYPE) == "diff_pruning_",
    }
    broken = [name for name, ok in what.items() if not ok]
    assert not broken, CHANGED.format(version=peft.__version__, what=", ".join(broken))
    assert DiffPruningPeftConfig().peft_type is PEFT_TYPE


def test_registering_again_and_adding_a_member_again_change_nothing() -> None:
    members = list(PeftType)
    register()
    assert add_peft_type("DIFF_PRUNING") is PEFT_TYPE
    assert list(PeftType) == members
    with pytest.raises(ValueError, match="upper-case identifier"):
        add_peft_type("diff pruning")


def test_import_deltamix_stays_free_of_peft_until_the_peft_names_are_used() -> None:
    code = (
        "import sys, deltamix; assert 'peft' not in sys.modules, 'import deltamix pulled in peft'; "
        "config = deltamix.DiffPruningPeftConfig(); from peft import PeftType; "
        "assert config.peft_type is PeftType.DIFF_PRUNING"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert deltamix.DiffPruningPeftConfig is DiffPruningPeftConfig


def test_the_config_rejects_dense_modules_and_names_the_field() -> None:
    with pytest.raises(ValueError, match="modules_to_save; leave dense_modules empty"):
        DiffPruningPeftConfig(dense_modules=["classifier"])
    with pytest.raises(ValueError, match="target_sparsity"):  # DiffPruningConfig's own validation
        DiffPruningPeftConfig(target_sparsity=0.0)
