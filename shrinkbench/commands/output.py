"""Printing tables as text, JSON or CSV."""
from __future__ import annotations

import csv
import json
import sys
from typing import Any, Sequence


def print_records(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str,
                  out=None) -> None:
    """Rows as an aligned text table (`text`), a JSON list (`json`) or CSV (`csv`)."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump(list(rows), out, indent=2)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    else:
        cells = [[_text(r.get(c, "")) for c in columns] for r in rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip() + "\n")
        for row in cells:
            out.write("  ".join(v.rjust(w) if _numeric(v) else v.ljust(w)
                                for v, w in zip(row, widths)).rstrip() + "\n")


def _text(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return str(value)


def _numeric(v: str) -> bool:
    return v.replace(",", "").replace(".", "").isdigit()
