"""`shrinkbench zoo` and `shrinkbench metrics`: what the toolkit knows."""
from __future__ import annotations

import argparse

from shrinkbench.commands.output import print_records


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zoo", help="list every model with params, MACs and fingerprint")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. 'cifar_resnet*'")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("metrics", help="list every metric with unit, direction and definition")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text")
    p.set_defaults(func=cmd_metrics)


def cmd_zoo(args: argparse.Namespace) -> int:
    from shrinkbench.models import describe_model, list_models

    names = list_models(args.pattern)
    if not names:
        from shrinkbench.errors import UnknownNameError
        from shrinkbench.models import MODELS
        raise UnknownNameError(MODELS.unknown_message(args.pattern))
    rows = [describe_model(n) for n in names]
    columns = ["name", "input_shape", "num_classes", "params", "macs", "fingerprint"]
    if args.format != "text":
        columns += ["family", "excluded", "uncounted", "reference", "description"]
    print_records(rows, columns, args.format)
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from shrinkbench.metrics import METRICS

    rows = [METRICS.get(n).as_dict() for n in METRICS]
    for r in rows:
        r["higher_is_better"] = {True: "higher", False: "lower", None: "-"}[r["higher_is_better"]] \
            if args.format == "text" else r["higher_is_better"]
        if args.format == "text":
            r["stage"] = ",".join(r["stage"])
            r["name"] = r["name"] + ("_b<N>" if r["per_batch_size"] else "")
            r["definition"] = " ".join(r["definition"].split())
    if args.format == "text":
        for r in rows:
            print(f"{r['name']}  [{r['unit']}, {r['higher_is_better']} is better, "
                  f"stage {r['stage']}, {r['kind']}]\n    {r['definition']}\n")
        return 0
    print_records(rows, ["name", "unit", "higher_is_better", "definition", "stage", "kind",
                         "per_batch_size"], args.format)
    return 0
