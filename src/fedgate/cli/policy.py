"""``fedgate policy``: the negotiation matrix, one combination checked, two sides negotiated."""

from __future__ import annotations

from collections.abc import Callable

import click

from .. import policy as engine
from ..explain import method_name, note_text, outcome_text
from ..i18n import t
from ..partners import FieldError
from ..policy import Evaluation, Note, Settings
from .output import FORMATS_TABLE_JSON, FORMATS_WITH_CSV, key_values, note_line, table, to_csv, to_json, yes_no
from .types import FieldType, LineUsageError, ValueUsageError, choice


def _methods(evaluation: Evaluation, none: str = "-") -> str:
    return " ".join(m.value for m in evaluation.expected_methods) or none


@click.group()
def policy() -> None:
    """The negotiation policy: which authentication methods settings allow (from the policy engine)."""


@policy.command()
@click.option("--format", "fmt", type=choice("format", FORMATS_WITH_CSV), default="table", show_default=True)
def matrix(fmt: str) -> None:
    """All 18 TLS / SASL / dialback combinations with their methods, validity and notes."""
    rows = engine.matrix()
    if fmt == "json":
        click.echo(to_json({"rows": [e.as_row() for e in rows]}))
        return
    if fmt == "csv":
        headers = ["tls", "sasl", "dialback", "expected_methods", "valid", "notes"]
        click.echo(
            to_csv(
                headers,
                (
                    [e.settings.tls.value, e.settings.sasl.value, str(e.settings.dialback).lower(), _methods(e, ""),
                     str(e.valid).lower(), " ".join(n.value for n in e.notes)]
                    for e in rows
                ),
            )
        )
        return
    # Notes are long sentences: the table marks them [1], [2]... and explains each once below.
    numbers: dict[Note, int] = {}
    for e in rows:
        for n in e.notes:
            numbers.setdefault(n, len(numbers) + 1)
    headers = [t("setting.tls"), t("setting.sasl"), t("setting.dialback"), t("cli.heading.valid"),
               t("cli.heading.methods"), t("cli.heading.notes")]
    body = [
        [e.settings.tls.value, e.settings.sasl.value, str(e.settings.dialback).lower(), yes_no(e.valid),
         _methods(e), " ".join(f"[{numbers[n]}]" for n in e.notes)]
        for e in rows
    ]
    legend = [f"[{i}] {note_line(n)}" for n, i in numbers.items()]
    methods = [f"{m.value}: {method_name(m)}" for m in engine.METHODS_IN_PREFERENCE_ORDER]
    click.echo("\n".join([table(headers, body), "", *legend, "", *methods]))


@policy.command()
@click.option("--tls", type=FieldType("tls", engine.parse_tls), required=True, help="required|optional|not_supported")
@click.option(
    "--sasl", type=FieldType("sasl", engine.parse_sasl), required=True, help="required|optional|not_supported"
)
@click.option("--dialback/--no-dialback", default=None, help="Server Dialback on or off (one of them is required).")
@click.option("--format", "fmt", type=choice("format", FORMATS_TABLE_JSON), default="table", show_default=True)
@click.pass_context
def check(ctx: click.Context, tls: engine.Tls, sasl: engine.Sasl, dialback: bool | None, fmt: str) -> int:
    """Whether one combination can work, which methods it allows, and every warning and error.
    Exits 1 when the combination is not valid."""
    if dialback is None:
        raise click.MissingParameter(ctx=ctx, param=next(p for p in ctx.command.params if p.name == "dialback"))
    evaluation = engine.evaluate(Settings(tls, sasl, dialback))
    if fmt == "json":
        explanations = [
            {"note": n.value, "kind": "error" if n.is_error else "warning", "text": note_text(n)}
            for n in evaluation.notes
        ]
        click.echo(to_json({**evaluation.as_row(), "explanations": explanations}))
    else:
        s = evaluation.settings
        click.echo(key_values([
            (t("setting.tls"), t(f"value.{s.tls.value}")),
            (t("setting.sasl"), t(f"value.{s.sasl.value}")),
            (t("setting.dialback"), t("value.on" if s.dialback else "value.off")),
        ]))
        if evaluation.valid:
            names = t("cli.list_separator").join(method_name(m) for m in evaluation.expected_methods)
            click.echo(t("check.valid", methods=names))
        else:
            click.echo(t("check.invalid"))
        for note in evaluation.notes:
            click.echo(note_line(note))
    return 0 if evaluation.valid else 1


def _triple(option: str) -> Callable[[object], Settings]:
    """The parser of ``--local`` / ``--remote``: a refused value names the option, then the part at fault."""

    def parse(value: object) -> Settings:
        if isinstance(value, Settings):
            return value
        if not isinstance(value, str) or value.count("/") != 2:
            raise FieldError(option, value, "not_triple", "settings_triple")
        try:
            return Settings.parse_triple(value)
        except engine.SettingError as error:
            choices = ", ".join(error.allowed)
            given = error.value if isinstance(error.value, str) else repr(error.value)
            raise ValueUsageError(
                t("cli.error.triple_part", field=option, value=value, part=error.field, given=given, choices=choices)
            ) from None

    return parse


def _outcome_json(outcome: engine.Outcome) -> dict[str, object]:
    """The outcome's stable codes; a failed one also says in words (the chosen language) which side's which setting
    ruled out which method."""
    values = outcome.as_dict()
    if not outcome.ok:
        values["explanation"] = outcome_text(outcome)
    return values


@policy.command()
@click.option("--local", "local", type=FieldType("local", _triple("--local"), "TLS/SASL/DIALBACK"),
              help="Our settings for the partner, e.g. required/optional/true.")
@click.option("--remote", "remote", type=FieldType("remote", _triple("--remote"), "TLS/SASL/DIALBACK"),
              help="The partner's settings for us.")
@click.option("--initiator-cert-invalid", is_flag=True,
              help="The initiating side's certificate is not valid for its domain (rules out SASL EXTERNAL).")
@click.option("--all", "all_pairs", is_flag=True, help="All 324 pairs of settings, local side initiating.")
@click.option("--format", "fmt", type=choice("format", FORMATS_TABLE_JSON), default="table", show_default=True)
def negotiate(
    local: Settings | None, remote: Settings | None, initiator_cert_invalid: bool, all_pairs: bool, fmt: str
) -> int:
    """The method two sides will use, or why they have none. Exits 1 when a single pair has no method."""
    valid_cert = not initiator_cert_invalid
    if all_pairs:
        if local is not None or remote is not None:
            raise LineUsageError(t("cli.error.all_with_sides"))
        outcomes = engine.all_pairs(initiator_certificate_valid=valid_cert)
        if fmt == "json":
            click.echo(to_json([_outcome_json(o) for o in outcomes]))
        else:
            headers = [t("side.local"), t("side.remote"), t("cli.heading.method")]
            click.echo(table(headers, ([str(o.local), str(o.remote), o.method or "-"] for o in outcomes)))
        return 0
    if local is None or remote is None:
        raise LineUsageError(t("cli.error.sides_required"))
    outcome = engine.negotiate(local, remote, initiator_certificate_valid=valid_cert)
    click.echo(to_json(_outcome_json(outcome)) if fmt == "json" else outcome_text(outcome))
    return 0 if outcome.ok else 1
