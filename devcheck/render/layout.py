"""A table that keeps every value whole at the width it is printed at. Squeezed, Rich folds numbers,
cuts words to `…` and crops what still overflows: at 80 columns (every pipe's and CI log's width)
compare's checks came one character per line and its tables lost their last columns. Here a table is
printed with every value on one line when it fits; else with its last column, long text, wrapping
between words (never inside one: its narrowest is its longest word); else as records, a line or a
few per row of `name: value` pairs, never split inside a pair (one longer than the width overflows
it, whole: print with crop=False). Headers may wrap between their words: they are names, not values."""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

GAP = "   "  # between two pairs of a record
INDENT, HANGING = "  ", "      "  # a record's first line, and its next ones
Cell = Text | str


@dataclass
class Fitted:
    """`table`, built from `header` and `rows` (the cells as shown), decided at its width. `fold`: the
    columns of text that may wrap between words, narrowed last first (a section's last column only: one
    in the middle would put its lines between other columns' cells); `lead`: as `records`;
    `as_records`: the rows as records show them, when not as the table does."""

    table: Table
    header: list[str]
    rows: list[list[Cell]]
    fold: tuple[int, ...] = ()
    lead: int = 1
    as_records: list[list[Cell]] | None = None
    inside_words: bool = False  # `fold` columns may break a word too (glance's name and verdict: not values)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        need = self.widths(console, options.max_width)
        if need is None:
            rows = self.rows if self.as_records is None else self.as_records
            yield from records(self.table, self.header, rows, options.max_width, self.lead)
            return
        for column, n in zip(self.table.columns, need):
            column.width, column.min_width, column.overflow = n, None, "fold"
        yield self.table

    def widths(self, console: Console, width: int) -> list[int] | None:
        """Each column's width that keeps every value whole in `width`, or None when there are none."""
        for column in self.table.columns:  # as built: a width set by an earlier rendering is not natural
            column.width = None
        columns = [[_plain(row[i]) for row in self.rows] for i in range(len(self.header))]
        lines = [[line for cell in column for line in cell.splitlines() or [""]] for column in columns]
        longest = [max(map(cell_len, col), default=0) for col in lines]
        heads = [max(map(cell_len, name.splitlines() or [""])) for name in self.header]
        natural = Measurement.get(console, console.options.update_width(10**6), self.table).maximum
        extra = natural - sum(max(head, n) for head, n in zip(heads, longest))  # borders and padding
        need = [max(n, _longest_word([name])) for n, name in zip(longest, self.header)]
        for i in sorted(self.fold, reverse=True):
            over = extra + sum(need) - width
            if over > 0:
                least = _longest_word([self.header[i]]) if self.inside_words else _longest_word(lines[i])
                need[i] = max(least, _longest_word([self.header[i]]), need[i] - over)
        return need if extra + sum(need) <= width else None


def records(table: Table, header: list[str], rows: list[list[Cell]], width: int, lead: int = 1) -> list[Text]:
    """Each row as a block: its first `lead` cells bare, then `name: value` pairs, as many to a line as
    fit in `width`; a cell of several lines (a check's detail and fix) under its row. Lines are never
    wrapped: a pair wider than the width stays whole."""
    out: list[Text] = [Text(str(table.title), style="bold")] if table.title else []
    for row in rows:
        line = Text(INDENT)
        for i, (name, cell) in enumerate(zip(header, row)):
            first, *more = (cell if isinstance(cell, Text) else Text(cell)).split("\n")
            if not first.plain and not more:
                continue  # no value to show
            pair = first if i < lead else Text.assemble((f"{' '.join(name.split())}: ", "dim"), first)
            if line.plain.strip() and cell_len(line.plain) + len(GAP) + pair.cell_len > width:
                out.append(line)
                line = Text(HANGING)
            line.append(GAP if line.plain.strip() else "").append_text(pair)
            for extra_line in more:
                out.append(line)
                line = Text(HANGING).append_text(extra_line)
        out.append(line)
    if table.caption:
        out.append(Text(str(table.caption), style="dim"))
    for line in out:
        line.no_wrap, line.overflow = True, "ignore"
    return out


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _longest_word(texts: list[str]) -> int:
    return max((cell_len(word) for text in texts for word in text.split()), default=0)
