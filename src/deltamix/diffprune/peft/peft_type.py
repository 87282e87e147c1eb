"""Diff pruning's identity in PEFT: its ``PeftType`` member, method name and key prefix.

PEFT 0.21's ``register_peft_method`` accepts only names that are already members of
``peft.utils.peft_types.PeftType``; an enum cannot be extended through its public API, so
:func:`add_peft_type` adds the member the way ``enum`` itself stores members: the one place deltamix
reaches into PEFT. Everything else goes through PEFT's public registration (registration.py).
tests/diffprune/peft/test_registration.py fails with a clear message if a PEFT release changes what
this relies on; pyproject.toml pins the PEFT versions it was verified with.
"""

from __future__ import annotations

import enum

from peft.utils.peft_types import PeftType

METHOD_NAME = "diff_pruning"  # PEFT's name of the method (lower case); its PeftType is DIFF_PRUNING
PREFIX = "diff_pruning_"  # the prefix of its attributes and state-dict keys, as PEFT expects


def add_peft_type(name: str) -> PeftType:
    """Make ``name`` (upper case) a member of ``PeftType`` and return it; an existing member is returned as is.

    Raises:
        ValueError: if ``name`` is not an upper-case identifier.
        RuntimeError: if this PEFT's ``PeftType`` is not the ``str`` enum this was written for (a PEFT
            release changed it: check the supported versions in pyproject.toml).
    """
    if not (name.isidentifier() and name.isupper()):
        raise ValueError(f"a PeftType name must be an upper-case identifier, got {name!r}")
    if name in PeftType.__members__:
        return PeftType[name]
    needed = ("_member_map_", "_value2member_map_", "_member_names_")
    if not (issubclass(PeftType, str) and issubclass(PeftType, enum.Enum)) or not all(
        hasattr(PeftType, attr) for attr in needed
    ):
        raise RuntimeError(
            "peft.utils.peft_types.PeftType is no longer a str Enum with the members deltamix adds to; "
            "this PEFT release is not supported (see the peft pin in deltamix's pyproject.toml)"
        )
    member = str.__new__(PeftType, name)
    member._name_ = name
    member._value_ = name
    member._sort_order_ = len(PeftType._member_names_)
    type.__setattr__(PeftType, name, member)  # EnumType.__setattr__ refuses new members
    PeftType._member_map_[name] = member
    PeftType._value2member_map_[name] = member
    PeftType._member_names_.append(name)
    return member


PEFT_TYPE = add_peft_type(METHOD_NAME.upper())
