"""`deltamix diff ...`: commands on diff files (``inspect``: size, non-zeros, per-layer breakdown, base)."""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from deltamix.cli.args import existing_file
from deltamix.diffprune import SparseDiff


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``diff`` command group."""
    parser = subparsers.add_parser("diff", help="inspect sparse diff files")
    commands = parser.add_subparsers(dest="diff_command", metavar="COMMAND", required=True)
    inspect_parser = commands.add_parser(
        "inspect", help="size, non-zeros, density, per-layer breakdown and base fingerprint of a diff file"
    )
    inspect_parser.add_argument("file", type=existing_file, metavar="FILE", help="a .safetensors diff file")
    inspect_parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON (default: off, a table)"
    )
    inspect_parser.add_argument(
        "--per-tensor",
        action="store_true",
        help="list every tensor instead of grouping by layer (default: off)",
    )
    inspect_parser.set_defaults(func=run_inspect)


def _layer_of(name: str) -> str:
    """Group a parameter name by layer: everything up to and including the first number (e.g. ``bert.encoder.layer.3``)."""
    match = re.match(r"^(.*?\.\d+)(\.|$)", name)
    if match:
        return match.group(1)
    return name.rsplit(".", 1)[0] if "." in name else name


def summarize(path: Path, per_tensor: bool = False) -> dict[str, Any]:
    """A JSON-ready summary of the diff file at ``path`` (loads and validates it fully)."""
    diff = SparseDiff.load(path)
    size = path.stat().st_size
    rows: dict[str, dict[str, Any]] = defaultdict(lambda: {"numel": 0, "nnz": 0, "kind": "gated"})
    for stat in diff.tensor_stats():
        key = stat["name"] if per_tensor else _layer_of(stat["name"])
        rows[key]["numel"] += stat["numel"]
        rows[key]["nnz"] += stat["nnz"]
        if stat["kind"] == "dense":
            rows[key]["kind"] = "dense"
    fp = diff.base_fingerprint
    return {
        "file": str(path),
        "bytes": size,
        "nnz": diff.nnz,
        "num_gated": diff.num_gated,
        "density": diff.density,
        "dense_params": diff.num_dense,
        "bytes_per_nnz": size / diff.nnz if diff.nnz else None,
        "quantization": diff.quantization,
        "stage": (diff.config or {}).get("stage"),
        "base": {
            "params": len(fp["params"]),
            "numel": sum(math.prod(row[1]) for row in fp["params"]),
            "dtypes": sorted({row[2] for row in fp["params"]}),
            "sample_sha256": fp["sample_sha256"],
            "values_sha256": fp.get("values_sha256"),
        },
        "layers": [{"name": k, **v, "density": v["nnz"] / max(1, v["numel"])} for k, v in rows.items()],
    }


def run_inspect(args: argparse.Namespace) -> int:
    """Print the summary of one diff file."""
    summary = summarize(args.file, per_tensor=args.per_tensor)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    base = summary["base"]
    print(f"file        {summary['file']}")
    print(f"size        {summary['bytes']:,} bytes", end="")
    if summary["bytes_per_nnz"] is not None:
        print(f" ({summary['bytes_per_nnz']:.2f} bytes per non-zero, dense head included)")
    else:
        print()
    print(f"non-zeros   {summary['nnz']:,} of {summary['num_gated']:,} gated ({summary['density']:.4%})")
    print(f"dense head  {summary['dense_params']:,} parameters")
    if summary["quantization"]:
        q = summary["quantization"]
        print(
            f"values      {q['value_dtype']} (max abs error {q['max_abs_error']:.3g}, rel L2 {q['rel_l2_error']:.3g})"
        )
    print(f"base        {base['params']} tensors, {base['numel']:,} parameters, {', '.join(base['dtypes'])}")
    print(f"            values sha256 {base['values_sha256']}")
    print(f"            sampled sha256 {base['sample_sha256']}")
    width = max(len(row["name"]) for row in summary["layers"]) if summary["layers"] else 10
    print(f"\n{'layer':<{width}}  {'kind':<5}  {'non-zeros':>10}  {'numel':>12}  density")
    for row in summary["layers"]:
        print(
            f"{row['name']:<{width}}  {row['kind']:<5}  {row['nnz']:>10,}  {row['numel']:>12,}  {row['density']:.4%}"
        )
    return 0
