"""Row labels of GLUE runs: the L0 and training settings a run changed from what ``deltamix diffprune
glue`` gives with no flags, and the relabelling of such runs into rows of their own
(``"diffprune (lambda 1e-06)"``), so that a plain row averages runs of one setting only.
"""

from __future__ import annotations

from typing import Any

from deltamix.experiments.glue.methods import DIFF_METHODS, L0_METHODS
from deltamix.experiments.glue.run import GlueRunConfig, default_mask_epochs


def base_method(method: str) -> str:
    """The method of a row label: "diffprune" for "diffprune (lambda 1e-05)" (see `label_other_settings`)."""
    return method.split(" (")[0]


def _l0_lambda(record: dict[str, Any]) -> float | None:
    """The L0 penalty weight a run used (None for methods without one, or a record without it)."""
    if base_method(record["method"]) not in L0_METHODS:  # relabelled rows too
        return None
    return record.get("config", {}).get("resolved_l0_lambda")


# (lambda, structured penalty, gates clipped apart, (target density, multiplier lr) or None)
L0Setting = tuple[float | None, str | None, bool, tuple[float, float] | None]


def l0_setting(record: dict[str, Any]) -> L0Setting | None:
    """(lambda, structured penalty form or None, gates clipped apart, (target density, multiplier
    learning rate) or None) of an L0 run; None for other methods. With a target density the lambda is
    unused and given as None.

    A structured record without ``structured_penalty`` used the paper's product; a record without
    ``clip_gates_apart`` clipped all gradients together.
    """
    lam = _l0_lambda(record)
    if lam is None:
        return None
    config = record.get("config", {})
    apart = bool(config.get("clip_gates_apart", False))
    density = config.get("l0_target_density")
    if density is not None:
        density, lam = (density, config["multiplier_lr"]), None
    if base_method(record["method"]) != "diffprune-structured":
        return (lam, None, apart, density)
    return (lam, config.get("structured_penalty", "product"), apart, density)


def setting_text(setting: L0Setting) -> str:
    """An L0 setting as a row label's text: ``"lambda 1e-06, product penalty, gates clipped apart"``."""
    lam, penalty, apart, density = setting
    return ", ".join(
        part
        for part in (
            f"lambda {lam:g}"
            if density is None
            else f"target density {100 * density[0]:g}%, multiplier lr {density[1]:g}",
            f"{penalty} penalty" if penalty else "",
            "gates clipped apart" if apart else "",
        )
        if part
    )


def default_l0_setting(record: dict[str, Any]) -> L0Setting:
    """The L0 setting that ``deltamix diffprune glue`` gives the record's method and model with no L0
    flags: the embedded MiniLM's or the paper's lambda, the default penalty form, joint clipping."""
    config = record.get("config", {})
    defaults = GlueRunConfig(
        task=record["task"], method=base_method(record["method"]), model=config.get("model")
    )
    structured = base_method(record["method"]) == "diffprune-structured"
    return (
        defaults.resolved_l0_lambda(),
        defaults.structured_penalty if structured else None,
        defaults.clip_gates_apart,
        None if defaults.l0_target_density is None else (defaults.l0_target_density, defaults.multiplier_lr),
    )


# Training settings a run can change with flags, and how a row label names them (lr: the first stage's).
_TRAINING_SETTINGS = (
    ("resolved_lr", "lr"),
    ("head_lr", "head lr"),
    ("alpha_lr", "gate lr"),
    ("resolved_mask_lr", "fixed-mask lr"),
    ("epochs", "epochs"),
    ("mask_epochs", "fixed-mask epochs"),
    ("batch_size", "batch"),
    ("max_length", "max length"),
    ("warmup_ratio", "warmup"),
    ("weight_decay", "weight decay"),
    ("max_grad_norm", "gradient clip"),
    ("max_train_examples", "train examples"),
    ("max_eval_examples", "dev examples"),
    ("max_steps", "max steps"),
)
# Settings of the diff pruning methods only.
_DIFF_ONLY = frozenset({"head_lr", "resolved_mask_lr", "mask_epochs"})


def recorded_mask_lr(record: dict[str, Any]) -> float | None:
    """The fixed-mask rate a diff pruning run used: ``resolved_mask_lr``, or else ``mask_lr`` (a record
    without the resolved rate holds the rate itself there); None where neither is recorded."""
    config = record.get("config", {})
    return config.get("resolved_mask_lr", config.get("mask_lr"))


def training_setting_changes(record: dict[str, Any]) -> list[str]:
    """The training settings of ``record``'s run that differ from what ``deltamix diffprune glue`` gives
    its task, method and model with no flags, as label parts (``["fixed-mask lr 0.001"]``); [] for
    none. A setting missing from the record's config counts as its default."""
    config = dict(record.get("config", {}))
    if "mask_lr" in config:
        config["resolved_mask_lr"] = recorded_mask_lr(record)
    method = base_method(record["method"])
    defaults = GlueRunConfig(task=record["task"], method=method, model=config.get("model"))
    expected = {name: getattr(defaults, name, None) for name, _ in _TRAINING_SETTINGS}
    expected["resolved_lr"] = defaults.resolved_lr()
    expected["resolved_mask_lr"] = defaults.resolved_mask_lr()
    if config.get("mask_epochs") is not None:  # None: the default for the task's size
        expected["mask_epochs"] = default_mask_epochs(config.get("train_examples", 0))
    changes = []
    for name, text in _TRAINING_SETTINGS:
        if name not in config or (name in _DIFF_ONLY and method not in DIFF_METHODS):
            continue
        if name == "alpha_lr" and method not in L0_METHODS:
            continue
        if config[name] != expected[name]:
            changes.append(f"{text} {config[name]:g}" if config[name] is not None else f"{text} default")
    return changes


def label_other_settings(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` with the runs of other settings relabelled ``method (setting, ...)``: another L0
    setting (``lambda X``, ``P penalty``, ``gates clipped apart``, ``target density D``) or other
    training settings changed by flags (`training_setting_changes`, e.g. ``fixed-mask lr 0.001``).

    The runs at the command's defaults keep the method's name, so the table's plain row and the claims
    are about what the command does without flags; a run at any other setting (another default than the
    command's, or an exploratory setting) gets its own labelled row instead of being averaged in. A
    method with no run at the defaults keeps the settings of its newest run as the plain row (a table of
    quick runs only stays unlabelled).
    """

    def plain_of(candidates: list[dict[str, Any]], setting_of, default_of) -> dict[str, Any]:
        """method -> the setting of its plain row: the default where a run has it, else the newest run's."""
        plain: dict[str, Any] = {}
        newest: dict[str, str] = {}
        for record in candidates:
            method, setting = record["method"], setting_of(record)
            if plain.get(method, object()) == default_of(record):
                continue
            stamp = record.get("finished_at", "")
            if setting == default_of(record) or method not in newest or stamp > newest[method]:
                plain[method], newest[method] = setting, stamp
        return plain

    changes = {id(record): tuple(training_setting_changes(record)) for record in records}

    def training_of(record: dict[str, Any]) -> tuple[str, ...]:
        return changes[id(record)]

    plain_training = plain_of(records, training_of, lambda r: ())
    known = [  # an L0 run recorded without its setting does not choose the plain row
        r for r in records if training_of(r) == plain_training[r["method"]] and l0_setting(r) is not None
    ]
    plain_l0 = plain_of(known, l0_setting, default_l0_setting)
    out = []
    for record in records:
        l0, training = l0_setting(record), training_of(record)
        parts = [setting_text(l0)] if l0 is not None and l0 != plain_l0.get(record["method"]) else []
        parts += list(training) if training != plain_training[record["method"]] else []
        if parts:
            record = {**record, "method": f"{record['method']} ({', '.join(parts)})"}
        out.append(record)
    return out
