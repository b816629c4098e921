"""``fedgate partner``: New-/Set-/Get-/Remove-CsXmppAllowedPartner."""

from __future__ import annotations

import glob
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..i18n import t
from ..partners import PARTNER_FIELDS, Partner, PartnerType, domain_to_unicode, normalize_domain
from ..store import UnknownPartner
from .output import FORMATS_TABLE_JSON, table, to_json, warn, yes_no
from .state import State, given_options, pass_state
from .types import FieldType, LineUsageError, choice

F = TypeVar("F", bound=Callable[..., Any])

DOMAIN = FieldType("domain", normalize_domain, "DOMAIN")
FORMAT_OPTION = click.option(
    "--format", "fmt", type=choice("format", FORMATS_TABLE_JSON), default="table", show_default=True
)


_LEVELS = "required|optional|not_supported"


def _field(name: str, metavar: str) -> FieldType:
    return FieldType(name, PARTNER_FIELDS[name], metavar)


def _domains_option(flag: str, dest: str, help_text: str) -> Callable[[F], F]:
    """A repeatable option of additional domains."""
    domain_type = FieldType("additional_domains", lambda v: normalize_domain(v, "additional_domains"), "DOMAIN")
    return click.option(flag, dest, multiple=True, type=domain_type, help=help_text + " Repeatable.")


def _partner_options(f: F) -> F:
    """The field options ``new`` and ``set`` share; on ``set`` only those given change."""
    options = [
        click.option("--tls", type=_field("tls", _LEVELS), help="TLS (new partners: required)."),
        click.option("--sasl", type=_field("sasl", _LEVELS), help="SASL EXTERNAL (new partners: required)."),
        click.option("--dialback/--no-dialback", default=None, help="Server Dialback (new partners: on)."),
        click.option(
            "--partner-type",
            type=_field("partner_type", "|".join(p.value for p in PartnerType)),
            help="Trust level (new partners: public_unverified).",
        ),
        click.option(
            "--proxy-fqdn",
            type=_field("proxy_fqdn", "HOST[:PORT]"),
            help="Static route that overrides DNS; an empty value removes it.",
        ),
        click.option(
            "--keepalive/--no-keepalive", "enable_keepalive", default=None, help="Send keepalives (new partners: on)."
        ),
        click.option(
            "--connection-limit",
            type=_field("connection_limit", "N|default"),
            help="Connections to this partner at most; 'default' uses the gateway's partner_connection_limit.",
        ),
        click.option("--description", type=_field("description", "TEXT"), help="Free text for administrators."),
        FORMAT_OPTION,
    ]
    for option in reversed(options):
        f = option(f)
    return f


_FIELD_OPTIONS = ("tls", "sasl", "dialback", "partner_type", "proxy_fqdn", "enable_keepalive", "connection_limit",
                  "description")


def _show_domain(domain: str) -> str:
    shown = domain_to_unicode(domain)
    return domain if shown == domain else f"{domain} ({shown})"


def _report(partner: Partner, message_key: str, fmt: str) -> None:
    """The confirmation (or the partner as JSON), then its warnings on stderr."""
    if fmt == "json":
        click.echo(to_json(partner.as_dict()))
    else:
        click.echo(t(message_key, domain=_show_domain(partner.domain)))
    for note in partner.evaluation.warnings:
        warn(note)


@click.group()
def partner() -> None:
    """Allowed federation partners (New-/Set-/Get-/Remove-CsXmppAllowedPartner)."""


@partner.command("new")
@click.argument("domain", type=DOMAIN)
@_domains_option("--additional-domain", "additional_domains", "Another domain this partner answers for.")
@_partner_options
@pass_state
@click.pass_context
def new(ctx: click.Context, state: State, /, domain: str, fmt: str, **_: Any) -> None:
    """Add a partner. Settings with errors are refused with every reason; warnings are shown."""
    values = given_options(ctx, "additional_domains", *_FIELD_OPTIONS)
    created = Partner.parse(domain=domain, **values)
    _report(state.store().add_partner(created), "cli.partner.added", fmt)


@partner.command("set")
@click.argument("domain", type=DOMAIN)
@_domains_option("--add-additional-domain", "add_domains", "Add an additional domain; the others stay.")
@_domains_option("--remove-additional-domain", "remove_domains", "Remove an additional domain; the others stay.")
@_partner_options
@pass_state
@click.pass_context
def set_(
    ctx: click.Context,
    state: State,
    /,
    domain: str,
    add_domains: tuple[str, ...],
    remove_domains: tuple[str, ...],
    fmt: str,
    **_: Any,
) -> None:
    """Change a partner: only the options given change, the rest stay as they are.

    Additional domains are changed one by one with --add-additional-domain and --remove-additional-domain."""
    changes = given_options(ctx, *_FIELD_OPTIONS)
    if not changes and not add_domains and not remove_domains:
        raise LineUsageError(t("cli.error.nothing_to_change"))
    updated = state.store().modify_partner(
        domain, lambda current: current.changed(**changes).edit_additional_domains(add_domains, remove_domains)
    )
    _report(updated, "cli.partner.updated", fmt)


@partner.command("get")
@click.argument("pattern", required=False)
@FORMAT_OPTION
@pass_state
def get(state: State, pattern: str | None, fmt: str) -> None:
    """Show partners: all, those whose domain or an additional domain matches PATTERN (shell wildcards such as
    '*.example.com'), or the one named (exit 1 when there is none)."""
    store = state.store()
    if pattern is not None and not glob.has_magic(pattern):
        domain = normalize_domain(pattern)
        partners = store.list_partners(domain)
        if not partners:
            raise UnknownPartner(domain)
    else:
        partners = store.list_partners(pattern)
    if fmt == "json":
        click.echo(to_json([p.as_dict() for p in partners]))
        return
    headers = [t(f"cli.heading.{h}") for h in ("domain", "additional_domains", "tls", "sasl", "dialback",
                                               "partner_type", "proxy_fqdn", "keepalive", "connection_limit",
                                               "description")]
    rows = [
        [_show_domain(p.domain), ", ".join(p.additional_domains) or "-", p.tls.value, p.sasl.value,
         yes_no(p.dialback), p.partner_type.value, p.proxy_fqdn or "-", yes_no(p.enable_keepalive),
         str(p.connection_limit) if p.connection_limit else t("cli.value.default"), p.description]
        for p in partners
    ]
    click.echo(table(headers, rows) if rows else t("cli.partner.none"))


@partner.command("remove")
@click.argument("domain", type=DOMAIN)
@pass_state
def remove(state: State, domain: str) -> None:
    """Remove a partner (exit 1 when there is none)."""
    removed = state.store().remove_partner(domain)
    click.echo(t("cli.partner.removed", domain=_show_domain(removed.domain)))
