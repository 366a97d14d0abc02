"""`shrinkbench zoo` and `shrinkbench metrics`: what the toolkit knows."""
from __future__ import annotations

import argparse

from shrinkbench.commands.output import print_records


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("zoo", help="list every model with params, MACs and fingerprint")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. 'cifar_resnet*'")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.add_argument("--groups", action="store_true",
                   help="list the channel dependency groups of the matching models (what channel pruning removes together)")
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("metrics", help="list every metric with unit, direction and definition")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("strategies", help="list the registered pruning strategies")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.set_defaults(func=cmd_strategies)

    p = sub.add_parser("datasets", help="list the datasets, their splits and where their files are looked for")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.add_argument("--data-root", default=None,
                   help="also look for the datasets in this folder (default: the search order in the README)")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("suites", help="list the suites shipped with the package")
    p.set_defaults(func=cmd_suites)


def cmd_zoo(args: argparse.Namespace) -> int:
    from shrinkbench.models import describe_model, list_models

    names = list_models(args.pattern)
    if not names:
        from shrinkbench.errors import UnknownNameError
        from shrinkbench.models import MODELS
        raise UnknownNameError(MODELS.unknown_message(args.pattern))
    if args.groups:
        return _print_groups(names)
    rows = [describe_model(n) for n in names]
    columns = ["name", "input_shape", "num_classes", "params", "macs", "fingerprint"]
    if args.format != "text":
        columns += ["family", "excluded", "uncounted", "reference", "description"]
    print_records(rows, columns, args.format)
    return 0


def _print_groups(names: list[str]) -> int:
    from shrinkbench.structured.prune import groups_of

    for name in names:
        groups = groups_of(name)
        print(f"{name}: {len(groups)} channel groups over {len(groups.layers)} layers; not removable: "
              f"{'; '.join(groups.frozen)}")
        for line in groups.summary():
            print(f"  {line}")
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


def cmd_strategies(args: argparse.Namespace) -> int:
    from shrinkbench.pruning import list_strategies

    columns = ["name", "granularity", "scope", "criterion", "aliases", "description"]
    rows = [dict(zip(("name", "scope", "criterion", "aliases", "description", "granularity"), row))
            for row in list_strategies()]
    for r in rows:
        r["aliases"] = ", ".join(r["aliases"]) if args.format == "text" else list(r["aliases"])
    print_records(rows, columns, args.format)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from shrinkbench.data import DATASETS, dataset_spec, describe_search

    rows = []
    for name in DATASETS:
        spec = dataset_spec(name)
        rows.append({"name": name, "input_shape": list(spec.input_shape), "num_classes": spec.num_classes,
                     "val_size": spec.val_size, "in_memory": spec.in_memory,
                     "augmentation": spec.augmentation, "source": spec.source,
                     "searched": describe_search(name, args.data_root)})
    if args.format == "text":
        for r in rows:
            print(f"{r['name']}  [{'x'.join(map(str, r['input_shape']))}, {r['num_classes']} classes, "
                  f"validation {r['val_size']}, {'in memory' if r['in_memory'] else 'on disk'}]")
            print(f"    augmentation: {r['augmentation']}")
            print(f"    source: {r['source']}")
            print(f"    looked for in: {'; '.join(r['searched'])}\n")
        return 0
    print_records(rows, list(rows[0]), args.format)
    return 0


def cmd_suites(args: argparse.Namespace) -> int:
    from shrinkbench.suite import SUITES_DIR, shipped_suites

    for name in shipped_suites():
        import tomllib

        data = tomllib.loads((SUITES_DIR / f"{name}.toml").read_text())
        print(f"{name}  ({SUITES_DIR / (name + '.toml')})")
        print("    " + " ".join(str(data.get("description", "")).split()) + "\n")
    return 0
