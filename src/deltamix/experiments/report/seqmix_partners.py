"""The partner-overhang section of results/README.md: what SeqMix's ``partner_extent`` changes in a run.

Records come from ``experiments/partner_overhang.py`` (one per SeqMix run folder): over the run's first
epoch of batches, the encoder and decoder positions that the default ``partner_extent="union"`` adds
beyond the main examples (the authors' ``"main"`` masks them), and the share of the loss weight on
partner labels there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deltamix.experiments.report.common import markdown_table


def render(records: list[dict[str, Any]], out_dir: Path) -> str:
    """A Markdown table with a row per run folder. ``out_dir`` is unused."""
    rows = [
        [
            str(record["task"]),
            str(record["config"]["run_dir"]),
            f"{100 * record['metrics']['src_overhang']:.2f}%",
            f"{100 * record['metrics']['tgt_overhang']:.2f}%",
            f"{100 * record['metrics']['loss_weight_overhang']:.2f}%",
        ]
        for record in sorted(records, key=lambda r: (str(r["task"]), str(r["config"]["run_dir"])))
    ]
    return (
        "## SeqMix partners beyond the main example\n\n"
        'Where a partner is longer than its main example, the default `partner_extent="union"` keeps '
        "its tokens (at weight 1 - lambda, with full positional encodings) as extra positions that "
        'attention and the loss see; the authors\' fairseq code (`"main"`) masks them. Per SeqMix run, '
        "over its first epoch of batches as its trainer drew them: extra encoder and decoder positions "
        "per main token, and the share of the loss's token weight on partner labels there. Produced by "
        "`python experiments/partner_overhang.py RUN...`.\n\n"
        + markdown_table(["task", "run", "encoder positions", "decoder positions", "loss weight"], rows)
    )
