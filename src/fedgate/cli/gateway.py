"""``fedgate gateway``: Get-/Set-CsXmppGatewayConfiguration."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..i18n import t
from ..partners import GATEWAY_FIELDS, GatewaySettings, new_passphrase
from ..policy import evaluate
from .output import FORMATS_TABLE_JSON, key_values, to_json, warn, yes_no
from .state import State, given_options, pass_state
from .types import FieldType, LineUsageError, choice

F = TypeVar("F", bound=Callable[..., Any])

_METAVARS = {"unlisted_domains": "refuse|TLS/SASL/DIALBACK", "dialback_passphrase": "TEXT"}
_BOOLEAN_FIELDS = {f.name for f in dataclasses.fields(GatewaySettings) if f.type in (bool, "bool")}


def _gateway_options(f: F) -> F:
    """One option per gateway field, named after it (``--keepalive-interval``), checked by the field's parser."""
    defaults = GatewaySettings().as_dict()
    for name in reversed(list(GATEWAY_FIELDS)):
        flag = name.replace("_", "-")
        shown = "generated on first use" if name == "dialback_passphrase" else str(defaults[name]).lower()
        help_text = f"Default: {shown}."
        if name in _BOOLEAN_FIELDS:
            f = click.option(f"--{flag}/--no-{flag}", name, default=None, help=help_text)(f)
        else:
            field_type = FieldType(name, GATEWAY_FIELDS[name], _METAVARS.get(name, "N"))
            f = click.option(f"--{flag}", name, type=field_type, help=help_text)(f)
    return f


def _show(settings: GatewaySettings, show_secrets: bool) -> list[tuple[str, str]]:
    values = settings.as_dict(show_secrets=show_secrets)
    passphrase_set = values.pop("dialback_passphrase_set")
    if not show_secrets:
        values["dialback_passphrase"] = t("cli.passphrase.hidden" if passphrase_set else "cli.passphrase.unset")
    rows = []
    for name in GATEWAY_FIELDS:
        value = values[name]
        shown = yes_no(value) if isinstance(value, bool) else str(value)
        if name == "unlisted_domains" and settings.unlisted_domains is None:
            shown = t("cli.value.refuse")
        rows.append((t(f"cli.gateway.{name}"), shown))
    return rows


@click.group()
def gateway() -> None:
    """Gateway-wide settings (Get-/Set-CsXmppGatewayConfiguration)."""


@gateway.command("get")
@click.option(
    "--show-secrets", is_flag=True, help="Also print the dialback passphrase (generated now if there is none yet)."
)
@click.option("--format", "fmt", type=choice("format", FORMATS_TABLE_JSON), default="table", show_default=True)
@pass_state
def get(state: State, show_secrets: bool, fmt: str) -> None:
    """Show the gateway settings. The dialback passphrase stays hidden unless --show-secrets."""
    store = state.store()
    if show_secrets:
        store.dialback_passphrase()
    settings = store.get_gateway()
    if fmt == "json":
        click.echo(to_json(settings.as_dict(show_secrets=show_secrets)))
    else:
        click.echo(key_values(_show(settings, show_secrets)))


@gateway.command("set")
@_gateway_options
@click.option(
    "--regenerate-dialback-passphrase", is_flag=True, help="Replace the dialback passphrase with a new random one."
)
@pass_state
@click.pass_context
def set_(ctx: click.Context, state: State, /, regenerate_dialback_passphrase: bool, **_: Any) -> None:
    """Change gateway settings: only the options given change. Times are in seconds, sizes in bytes.
    --unlisted-domains refuse (the default) turns away domains that are not partners; a settings triple such as
    optional/optional/true accepts them with those settings."""
    changes = given_options(ctx, *GATEWAY_FIELDS)
    if regenerate_dialback_passphrase:
        changes["dialback_passphrase"] = new_passphrase()
    if not changes:
        raise LineUsageError(t("cli.error.nothing_to_change"))
    # Within one transaction, so that two changes made at once cannot together leave the per-partner limit above
    # the total; a refusal (exit 1) writes nothing.
    updated = state.store().modify_gateway(lambda current: current.changed(**changes).check_limits())
    click.echo(t("cli.gateway.updated"))
    if updated.unlisted_domains is not None:
        for note in evaluate(updated.unlisted_domains).warnings:
            warn(note)
