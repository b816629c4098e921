"""How the CLI writes: tables for people (CJK-width aware), JSON and CSV for scripts, one-line errors and warnings."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Sequence

import click

from ..explain import note_text
from ..i18n import t
from ..policy import Note

FORMATS_TABLE_JSON = ("table", "json")
FORMATS_WITH_CSV = ("table", "json", "csv")


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    body = [list(map(str, row)) for row in rows]
    widths = [max([width(h), *(width(r[i]) for r in body)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c + " " * (w - width(c)) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in body)])


def key_values(pairs: Iterable[tuple[str, str]]) -> str:
    """A two-column listing: label, value."""
    items = list(pairs)
    pad = max((width(k) for k, _ in items), default=0)
    return "\n".join(k + " " * (pad - width(k)) + "  " + v for k, v in items)


def to_json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")


def error_line(message: str) -> str:
    return t("cli.line.error", message=message)


def warn(note: Note) -> None:
    """A policy warning, on stderr, in the chosen language."""
    click.echo(t("cli.line.warning", message=note_text(note)), err=True)


def note_line(note: Note) -> str:
    """A note marked as error or warning."""
    return t("cli.line.error" if note.is_error else "cli.line.warning", message=note_text(note))


def yes_no(value: bool) -> str:
    return t("cli.value.yes" if value else "cli.value.no")
