"""Small text renderers shared by tables and reports: Markdown, HTML and LaTeX tables,
and number formatting (`mean ± std (n)`)."""
from __future__ import annotations

import html
import math
import textwrap
from dataclasses import dataclass, field

TERMINAL_WIDTH = 100
"""Columns of the terminal output (summary, compact tables, the sweep's opening lines)."""


def fmt(value, digits: int = 2) -> str:
    """A number with `digits` decimals; '–' for NaN/None."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value)
    return f"{value:.{digits}f}"


def fmt_p(p) -> str:
    """p-values: 3 significant digits, '<0.001' below 0.001."""
    if p is None or not math.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def mean_std_n(mean, std, n, digits: int = 2, pm: str = "±") -> str:
    """`mean ± std (n)`; the std is '–' with one seed."""
    if mean is None or not math.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} {pm} {fmt(std, digits)} ({int(n)})"


@dataclass
class Table:
    """A titled table of text cells; `bold` holds (row, column) cells to emphasise."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    align: list[str] | None = None  # 'l' or 'r' per column
    note: str = ""
    bold: set = field(default_factory=set)
    headings: set = field(default_factory=set)
    """Rows that head a section (one non-empty cell): plain text prints them as a line of
    their own, outside the columns' widths."""

    def markdown(self, level: int = 3) -> str:
        align = self.align or ["l"] * len(self.headers)

        def clean(cell: str) -> str:
            return str(cell).replace("|", "\\|").replace("\n", " ")

        def cell(i: int, j: int, text: str) -> str:
            return f"**{clean(text)}**" if (i, j) in self.bold else clean(text)

        lines = [f"{'#' * level} {self.title}", "", "| " + " | ".join(clean(h) for h in self.headers) + " |",
                 "| " + " | ".join("---:" if a == "r" else "---" for a in align) + " |"]
        lines += ["| " + " | ".join(cell(i, j, c) for j, c in enumerate(row)) + " |"
                  for i, row in enumerate(self.rows)]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def text(self, width: int | None = None) -> str:
        """Aligned plain text for a terminal: title and note wrapped to `width` columns
        (None: not wrapped), emphasised cells marked with a trailing `*` (plain text has no bold)."""
        align = self.align or ["l"] * len(self.headers)
        rows = [[f"{c}*" if (i, j) in self.bold else str(c) for j, c in enumerate(r)] for i, r in enumerate(self.rows)]
        grid = [list(map(str, self.headers))] + rows
        aligned = [grid[0]] + [r for i, r in enumerate(rows) if i not in self.headings]
        widths = [max(len(row[j]) for row in aligned) for j in range(len(self.headers))]

        def line(row: list[str]) -> str:
            return "  ".join(c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align))

        wrap = (lambda text: textwrap.wrap(text, width, break_on_hyphens=False)) if width else (lambda text: [text])
        out = wrap(self.title) + [line(grid[0]), "  ".join("-" * w for w in widths)]
        out += ["  " + " ".join(c for c in row if c) if i in self.headings else line(row)
                for i, row in enumerate(grid[1:])]
        note = self.note + (" *: marked (bold in the Markdown and HTML report)." if self.bold else "")
        if note.strip():
            out += wrap(note)
        return "\n".join(o.rstrip() for o in out) + "\n"

    def html(self, level: int = 3) -> str:
        align = self.align or ["l"] * len(self.headers)
        cls = ['' if a == "l" else ' class="num"' for a in align]
        head = "".join(f"<th{c}>{html.escape(str(h))}</th>" for h, c in zip(self.headers, cls))
        body = []
        for i, row in enumerate(self.rows):
            cells = []
            for j, (text, c) in enumerate(zip(row, cls)):
                text = html.escape(str(text))
                cells.append(f"<td{c}>{'<strong>' + text + '</strong>' if (i, j) in self.bold else text}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        note = f"<p class=\"note\">{html.escape(self.note)}</p>" if self.note else ""
        return (f"<h{level}>{html.escape(self.title)}</h{level}><div class=\"scroll\"><table><thead><tr>{head}"
                f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>{note}")


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                 "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
                 "±": r"$\pm$", "Δ": r"$\Delta$", "×": r"$\times$", "↓": r"$\downarrow$",
                 "–": "--", "<": r"$<$", ">": r"$>$", "≤": r"$\leq$", "≥": r"$\geq$", "α": r"$\alpha$",
                 "−": r"$-$", "|": r"$|$"}
"""Characters LaTeX would drop or mis-set in its default (OT1) encoding: `<` prints as `¡`."""


def latex_escape(text: str, breakable: bool = False) -> str:
    """`text` safe for LaTeX: specials escaped, a minus sign before a number set as `$-$`
    (not a hyphen), and with `breakable` a break allowed after `/` and `_` (long names in
    captions would otherwise overflow the line)."""
    text = str(text)
    out = []
    for i, ch in enumerate(text):
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else ""
        if ch == "-" and after[:1].isdigit() and not (before.isalnum() or before == "."):
            out.append("$-$")
            continue
        out.append(LATEX_SPECIAL.get(ch, ch))
        if breakable and ch in "/_":
            out.append(r"\allowbreak{}")
    return "".join(out)
