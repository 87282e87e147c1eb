"""Where the group gates of structured diff pruning go in the first L0 steps, per penalty form.

Runs the first ``--steps`` steps of the L0 stage of ``deltamix diffprune glue --method
diffprune-structured`` (same model, batch size, optimizer groups and learning rates, clipping; its own
seeded data order; no evaluation) and logs,
every 10 steps, the group gates' and the entry gates' open probabilities P(z != 0). Appends one
record per run to ``<results-dir>/glue-gates.jsonl`` (the trajectory in ``trajectory``, the groups still
open at the end in ``open_groups``). It shows why the paper equation's product penalty closes every
large tensor of MiniLM within ~100 steps while the authors' code's sum does not (docs/diffprune.md).

    python experiments/structured_gates.py --penalty product --steps 150
    python experiments/structured_gates.py --penalty sum --steps 150
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from deltamix.cli.args import existing_dir, non_negative_float, positive_int
from deltamix.core.records import append_record, make_record
from deltamix.data.glue import get_task
from deltamix.diffprune import DiffPruningModel
from deltamix.diffprune.config import STRUCTURED_PENALTIES
from deltamix.diffprune.hard_concrete import prob_nonzero
from deltamix.experiments.glue.run import GlueRunConfig, load_classifier, prepare_data


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--penalty", choices=STRUCTURED_PENALTIES, default="sum")
    parser.add_argument("--l0-lambda", type=non_negative_float, help="default: the embedded MiniLM's (2e-7)")
    parser.add_argument("--steps", type=positive_int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=existing_dir, default="../shared/data/glue")
    parser.add_argument("--results-dir", default="results/glue-search")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    config = GlueRunConfig(
        task=args.task,
        method="diffprune-structured",
        data_dir=str(args.data_dir),
        seed=args.seed,
        l0_lambda=args.l0_lambda,
        structured_penalty=args.penalty,
        output_dir="unused",
    )
    from transformers import AutoTokenizer, DataCollatorWithPadding

    tokenizer = AutoTokenizer.from_pretrained(config.model_path())
    train, _, _ = prepare_data(config, tokenizer)
    model = load_classifier(config, get_task(config.task))
    dp = DiffPruningModel(model, config.glue_method.diff_config(config, model))
    cfg = dp.diff_config
    groups = dp.optimizer_param_groups()
    optimizer = torch.optim.AdamW(groups, fused=True)
    trainable = [p for group in groups for p in group["params"]]
    loader = DataLoader(
        train.with_format("torch"),
        batch_size=config.batch_size,
        shuffle=True,
        collate_fn=DataCollatorWithPadding(tokenizer),
        generator=torch.Generator().manual_seed(args.seed),
    )
    dp.train()
    trajectory = []
    start = time.perf_counter()
    batches = iter(loader)
    for step in range(1, args.steps + 1):
        batch = dict(next(batches))  # the collator names the labels "labels"
        task_loss = dp(**batch).loss
        (task_loss + cfg.l0_lambda * dp.l0_penalty()).backward()
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 10 == 0 or step == args.steps:
            group_p = prob_nonzero(dp.group_alpha.detach(), cfg.stretch_left, cfg.stretch_right)
            entry_p = prob_nonzero(dp.alpha.detach(), cfg.stretch_left, cfg.stretch_right)
            point = {
                "step": step,
                "task_loss": float(task_loss),
                "group_p_mean": float(group_p.mean()),
                "groups_closed": int((group_p < 0.5).sum()),
                "entry_p_mean": float(entry_p.mean()),
            }
            trajectory.append(point)
            print(point, flush=True)
    group_p = prob_nonzero(dp.group_alpha.detach(), cfg.stretch_left, cfg.stretch_right).tolist()
    open_groups = {span.name: p for span, p in zip(dp._spans, group_p, strict=True) if p >= 0.5}
    open_entries = sum(span.numel for span in dp._spans if span.name in open_groups)
    last = trajectory[-1]
    metrics = {
        "groups_closed": last["groups_closed"],
        "groups": len(group_p),
        "share_in_open_groups": open_entries / dp.num_gated,
        "group_p_mean": last["group_p_mean"],
        "entry_p_mean": last["entry_p_mean"],
        "steps": args.steps,
    }
    record = make_record(
        "glue-gates",
        config.task,
        f"diffprune-structured-{args.penalty}",
        args.seed,
        metrics,
        "share_in_open_groups",
        {**vars(args), "l0_lambda": cfg.l0_lambda, "diffprune_config": cfg.to_dict()},
        model="sentence-transformers/all-MiniLM-L6-v2",
        train_seconds=time.perf_counter() - start,
        trajectory=trajectory,
        open_groups=open_groups,
    )
    path = append_record(record, args.results_dir)
    print(f"{args.penalty}: {metrics} -> {path}")


if __name__ == "__main__":
    main()
