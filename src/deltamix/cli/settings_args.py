"""Command-line options generated from settings dataclasses, as transformers' ``HfArgumentParser`` does.

One declaration, the dataclass field, gives the option, its ``--help`` text with the default and the
config field it fills. A field's ``metadata`` may hold, besides ``help``:

- ``flag``: the option's name when it is not the field's (``"--threads"`` for ``num_threads``);
- ``aliases``: older spellings, accepted with a `FutureWarning` and hidden from ``--help``;
- ``type``: the name of a checked type in `deltamix.cli.args` (``"positive_int"``) or a function, so
  that a bad value is refused at parse time naming the option; otherwise the annotation's int / float;
- ``choices``: the allowed values;
- ``default_help``: what the default means when it is None or depends on other settings;
- ``nargs``: ``"+"`` for a tuple field given as several values (``--seeds 0 1 2``);
- ``required``: whether the option must be given (default: for a field without a default).

>>> parser = argparse.ArgumentParser()
>>> add_settings_options(parser, TextRunConfig, ["seed", "train_limit"])  # doctest: +SKIP
>>> TextRunConfig(kind="translate", **settings_from_args(parser.parse_args([]), ["seed"]))  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from deltamix.cli import args as checked_types


class DeprecatedAlias(argparse.Action):
    """An older spelling of an option: stores into the same field and warns that it will go."""

    def __init__(self, option_strings: Sequence[str], dest: str, replacement: str, **kwargs: Any) -> None:
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        warnings.warn(
            f"{option_string} is deprecated and will be removed; use {self.replacement}",
            FutureWarning,
            stacklevel=2,
        )
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def add_alias(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    alias: str,
    replacement: str,
    dest: str,
    **kwargs: Any,
) -> None:
    """Accept ``alias`` as a hidden, deprecated spelling of the option ``replacement`` (field ``dest``);
    ``kwargs`` are the option's ``type`` / ``choices`` / ``nargs``."""
    parser.add_argument(
        alias,
        dest=dest,
        action=DeprecatedAlias,
        replacement=replacement,
        default=argparse.SUPPRESS,
        help=argparse.SUPPRESS,
        **kwargs,
    )


class _Field(NamedTuple):
    """A dataclass field with metadata replaced for one command (see `add_settings_options`)."""

    name: str
    type: Any
    default: Any
    metadata: dict[str, Any]
    default_factory: Any = dataclasses.MISSING


def field_default(spec: dataclasses.Field | _Field) -> Any:
    """The default of a dataclass field (calling its ``default_factory``); None if it has neither."""
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return None


def option_name(spec: dataclasses.Field) -> str:
    """The option of a field: ``metadata["flag"]``, else ``--`` and the name with dashes."""
    return spec.metadata.get("flag", "--" + spec.name.replace("_", "-"))


def _value_type(spec: dataclasses.Field) -> Any:
    """The argparse ``type`` of a field: its checked type, else int / float from the annotation."""
    if "type" in spec.metadata:
        given = spec.metadata["type"]
        return given if callable(given) else getattr(checked_types, given)
    annotation = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
    kinds = {part.strip() for part in re.split(r"[|\[\],]", annotation)} - {"None", ""}
    if kinds == {"int"}:
        return int
    if kinds == {"float"}:
        return float
    return None  # str, Path: the text as given


def _required(spec: dataclasses.Field | _Field) -> bool:
    """Whether the option must be given: ``metadata["required"]``, else a field without a default."""
    if "required" in spec.metadata:
        return bool(spec.metadata["required"])
    return spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING


def _help(spec: dataclasses.Field | _Field, default: Any) -> str:
    text = spec.metadata.get("help", "").rstrip(".").replace("%", "%%")
    if _required(spec):
        return f"{text} (required)"
    if "default_help" in spec.metadata:
        shown = spec.metadata["default_help"].replace("%", "%%")
    elif isinstance(default, bool):
        shown = "on" if default else "off"
    elif isinstance(default, (list, tuple)):
        shown = " ".join(map(str, default)).replace("%", "%%")
    else:
        shown = "%(default)s" if default is not None else "none"
    return f"{text} (default: {shown})"


def add_settings_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    cls: type,
    names: Iterable[str],
    defaults: dict[str, Any] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> None:
    """Add an option for each field ``names`` of dataclass ``cls`` (see the module docstring).

    Args:
        parser: the parser or argument group the options go in.
        cls: the settings dataclass.
        names: its fields to offer, in ``--help`` order.
        defaults: defaults that replace the fields' own (e.g. a command's budget).
        overrides: metadata entries that replace the field's for this command (e.g. the ``help`` of
            a field that means another thing there, or ``required``).

    Raises:
        ValueError: a name that is not a field of ``cls``.
    """
    fields = {spec.name: spec for spec in dataclasses.fields(cls)}
    for name in names:
        if name not in fields:
            raise ValueError(f"{cls.__name__} has no field {name!r}")
        spec = fields[name]
        if overrides and name in overrides:
            spec = _Field(
                name, spec.type, spec.default, {**spec.metadata, **overrides[name]}, spec.default_factory
            )
        default = (defaults or {}).get(name, field_default(spec))
        flag = option_name(spec)
        kwargs: dict[str, Any] = {"dest": name, "default": default, "help": _help(spec, default)}
        if _required(spec):
            kwargs["required"] = True
        if isinstance(default, bool):  # a switch: --flag turns on (or --no-flag off) what it names
            kwargs["action"] = "store_true" if not default else argparse.BooleanOptionalAction
            if default:  # BooleanOptionalAction appends the default to the help itself
                kwargs["help"] = spec.metadata.get("help", "").rstrip(".").replace("%", "%%")
            parser.add_argument(flag, **kwargs)
            for alias in spec.metadata.get("aliases", ()):
                add_alias(parser, alias, flag, name, nargs=0)
            continue
        value_kwargs = {}
        if "nargs" in spec.metadata:
            value_kwargs["nargs"] = spec.metadata["nargs"]
            kwargs["default"] = list(default)
        if spec.metadata.get("choices") is not None:
            value_kwargs["choices"] = tuple(spec.metadata["choices"])
        value_type = _value_type(spec)
        if value_type is not None:
            value_kwargs["type"] = value_type
        if "choices" not in value_kwargs:
            kwargs["metavar"] = flag.lstrip("-").replace("-", "_").upper()
        parser.add_argument(flag, **kwargs, **value_kwargs)
        for alias in spec.metadata.get("aliases", ()):
            add_alias(parser, alias, flag, name, **value_kwargs)


def settings_from_args(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Any]:
    """The parsed values of the fields ``names``, as keyword arguments of the settings dataclass."""
    return {name: getattr(args, name) for name in names}
