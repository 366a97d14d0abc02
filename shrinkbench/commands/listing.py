"""`shrinkbench tracks`, `zoo`, `strategies`, `datasets`, `metrics`, `suites`: what the toolkit knows,
for every track (a `track` column in JSON and CSV, a section per track in text, `--track` to filter)."""
from __future__ import annotations

import argparse

from shrinkbench.commands.output import print_records


TRACK_COLUMNS = {  # what the text tables show of each track's rows (JSON and CSV carry every field)
    "zoo": {"vision": ["name", "input_shape", "num_classes", "params", "macs", "fingerprint"],
            "llm": ["name", "params", "context", "source"]},
    "strategies": {"vision": ["name", "granularity", "scope", "criterion", "aliases", "description"],
                   "llm": ["name", "kind", "granularity", "scopes", "criterion", "parameters", "paper",
                           "description"]},
}


def _track_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--track", default=None,
                   help="list only this track's entries (vision, llm; `shrinkbench tracks` lists them; default: all)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tracks", help="list the tracks (model families) with what each prunes and measures")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.set_defaults(func=cmd_tracks)

    p = sub.add_parser("zoo", help="list every model of every track: params, MACs and fingerprint (vision), "
                                   "params, context and weight source (llm)")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. 'cifar_resnet*'")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.add_argument("--groups", action="store_true",
                   help="list the channel dependency groups of the matching vision models (what channel pruning "
                        "removes together)")
    _track_option(p)
    p.set_defaults(func=cmd_zoo)

    p = sub.add_parser("metrics", help="list every metric with unit, direction and definition")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("strategies", help="list the registered pruning strategies of every track")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    _track_option(p)
    p.set_defaults(func=cmd_strategies)

    p = sub.add_parser("datasets", help="list the datasets and texts of every track, their splits and sources")
    p.add_argument("--format", choices=("text", "json", "csv"), default="text", help="output format (default: text)")
    p.add_argument("--data-root", default=None,
                   help="also look for the vision datasets in this folder (default: the search order in the README)")
    _track_option(p)
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("suites", help="list the suites shipped with the package")
    p.set_defaults(func=cmd_suites)


def _rows_by_track(args, rows_of) -> list[tuple[object, list[dict]]]:
    from shrinkbench.core.tracks import selected

    return [(track, [{"track": track.name, **row} for row in rows_of(track)]) for track in selected(args.track)]


def _print_by_track(sections, kind: str, fmt: str, default_columns=None) -> None:
    """Text: a heading and a table per track; JSON and CSV: one list of rows, each with its track."""
    rows = [row for _, section in sections for row in section]
    if fmt != "text":
        columns = list(dict.fromkeys(key for row in rows for key in row))
        print_records(rows, columns, fmt)
        return
    first = True
    for track, section in sections:
        if not section:
            continue
        if not first:
            print()
        first = False
        print(f"{track.name} ({len(section)}): {track.summary}")
        columns = TRACK_COLUMNS.get(kind, {}).get(track.name) or default_columns or list(section[0])
        print_records(section, columns, fmt)


def cmd_tracks(args: argparse.Namespace) -> int:
    from shrinkbench.core.tracks import tracks

    rows = [{"name": t.name, "summary": t.summary, "base_model": "trained once per base seed" if t.needs_base
             else "pretrained"} for t in tracks()]
    print_records(rows, ["name", "base_model", "summary"], args.format)
    return 0


def cmd_zoo(args: argparse.Namespace) -> int:
    sections = _rows_by_track(args, lambda track: track.listing.models(args.pattern))
    if not any(rows for _, rows in sections):
        from shrinkbench.core.errors import UnknownNameError

        known = [row["name"] for _, rows in _rows_by_track(args, lambda t: t.listing.models("*")) for row in rows]
        raise UnknownNameError(f"no model matches {args.pattern!r}; models: {', '.join(known)}")
    if args.groups:
        names = [row["name"] for track, rows in sections if track.name == "vision" for row in rows]
        if not names:
            from shrinkbench.core.errors import ConfigError

            raise ConfigError("--groups lists the channel groups of vision models; no vision model matches "
                              f"{args.pattern!r}")
        return _print_groups(names)
    _print_by_track(sections, "zoo", args.format)
    return 0


def _print_groups(names: list[str]) -> int:
    from shrinkbench.vision.structured.prune import groups_of

    for name in names:
        groups = groups_of(name)
        print(f"{name}: {len(groups)} channel groups over {len(groups.layers)} layers; not removable: "
              f"{'; '.join(groups.frozen)}")
        for line in groups.summary():
            print(f"  {line}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from shrinkbench.core.metrics import METRICS
    from shrinkbench.core.tracks import load_all_metrics

    load_all_metrics()
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
    sections = _rows_by_track(args, lambda track: track.listing.strategies())
    if args.format == "text":
        for _, rows in sections:
            for r in rows:
                for key in ("aliases", "scopes"):
                    if isinstance(r.get(key), list):
                        r[key] = ", ".join(r[key])
    _print_by_track(sections, "strategies", args.format)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    sections = _rows_by_track(args, lambda track: track.listing.datasets(args.data_root))
    if args.format != "text":
        _print_by_track(sections, "datasets", args.format)
        return 0
    first = True
    for track, rows in sections:
        if not rows:
            continue
        print(("" if first else "\n") + f"{track.name} ({len(rows)}): {track.summary}\n")
        first = False
        for r in rows:
            _print_data_entry(r)
    return 0


def _print_data_entry(r: dict) -> None:
    if "input_shape" in r:  # an image dataset
        print(f"{r['name']}  [{'x'.join(map(str, r['input_shape']))}, {r['num_classes']} classes, "
              f"validation {r['val_size']}, {'in memory' if r['in_memory'] else 'on disk'}]")
        print(f"    augmentation: {r['augmentation']}")
        print(f"    source: {r['source']}")
        print(f"    looked for in: {'; '.join(r['searched'])}\n")
        return
    print(f"{r['name']}  [{r['splits']}]")
    print(f"    split: {r['split_rule']}")
    print(f"    source: {r['source']}\n")


def cmd_suites(args: argparse.Namespace) -> int:
    from shrinkbench.core.suite import SUITES_DIR, shipped_suites

    for name in shipped_suites():
        import tomllib

        data = tomllib.loads((SUITES_DIR / f"{name}.toml").read_text())
        print(f"{name}  ({SUITES_DIR / (name + '.toml')})")
        print("    " + " ".join(str(data.get("description", "")).split()) + "\n")
    return 0
