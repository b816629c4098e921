"""``fedgate demo``: two gateways on loopback, every method end to end, one refused combination."""

from __future__ import annotations

import asyncio

import click

from ..demo import DOMAIN_A, DOMAIN_B, DemoReport, run_demo
from ..i18n import current_language, t
from .output import table, to_json


def render(report: DemoReport, lang: str | None = None) -> str:
    """The report for people: a table whose last row is the refused combination, the reasons as notes under
    it, a summary line."""
    headers = [t(f"demo.col.{c}", lang) for c in ("method", "settings", "negotiated", "tls", "round_trip", "result")]
    # Reasons are long sentences: the table marks them [1], [2]... and they follow it.
    notes: list[list[str]] = []

    def note(lines: list[str]) -> str:
        notes.append(lines)
        return f"[{len(notes)}]"

    body = [
        [
            r.method,
            r.settings,
            r.negotiated or "-",
            r.tls_version or "-",
            t("demo.ms", lang, ms=r.round_trip_ms) if r.round_trip_ms is not None else "-",
            t("demo.result.ok", lang) if r.ok else t("demo.result.failed", lang, reason=note([r.detail])),
        ]
        for r in report.rows
    ]
    if report.refused is not None:
        refused = report.refused
        reasons = note([refused.detail, *("- " + text for text in refused.explanation)])
        body.append(["-", refused.settings, "-", "-", "-", t("demo.result.refused", lang, reason=reasons)])
    lines = [t("demo.title", lang, a=DOMAIN_A, b=DOMAIN_B), "", table(headers, body)]
    for i, text in enumerate(notes, 1):
        lines += [f"[{i}] {text[0]}", *("    " + more for more in text[1:])]
    lines += ["", t("demo.summary_ok" if report.ok else "demo.summary_failed", lang)]
    return "\n".join(lines)


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo(as_json: bool) -> int:
    """Start two gateways on 127.0.0.1 with a throw-away test CA, send a message and its reply for each
    authentication method, and show a combination the policy engine refuses. Exit 0 when every method worked."""
    lang = current_language()
    report = asyncio.run(run_demo(lang))
    click.echo(to_json(report.as_dict()) if as_json else render(report, lang))
    return 0 if report.ok else 1
