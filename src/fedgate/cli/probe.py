"""``fedgate probe DOMAIN``: what a remote server offers to a server-to-server stream, and which method we
would use with it (or exactly why none)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from .. import config as config_mod
from ..i18n import current_language, t
from ..partners import normalize_domain
from ..policy import Settings
from ..probe import DEFAULT_FROM, ProbeReport, probe
from ..resolver import parse_host_port
from ..store import default_db_path
from ..store.sqlite import SqliteStore
from ..tls import Credentials
from .output import key_values, to_json
from .state import State, pass_state
from .types import FieldType, LineUsageError, choice

DOMAIN = FieldType("domain", normalize_domain, "DOMAIN")


def _connect(value: object) -> str:
    if not isinstance(value, str):
        raise click.BadParameter(t("probe.error.connect", value=value))
    try:
        parse_host_port(value)
    except ValueError:
        raise click.BadParameter(t("probe.error.connect", value=value)) from None
    return value


def _offer(offered: bool | None, required: bool = False, lang: str | None = None) -> str:
    if offered is None:
        return t("probe.not_reached", lang)
    if not offered:
        return t("probe.not_offered", lang)
    return t("probe.offered_required" if required else "probe.offered", lang)


def _settings_text(values: dict[str, Any] | None) -> str:
    if values is None:
        return "-"
    return str(Settings.parse(str(values["tls"]), str(values["sasl"]), bool(values["dialback"])))


def render(report: ProbeReport, lang: str | None = None) -> str:
    """The report for people: one labelled line per finding, then the verdict and every reason."""
    rows: list[tuple[str, str]] = []
    targets = [
        f"{x['host']}:{x['port']} -> {', '.join(x['addresses']) or x['error'] or '-'}" for x in report.targets
    ]
    rows.append((t("probe.label.targets", lang), "; ".join(targets) or "-"))
    rows.append((t("probe.label.connected", lang), report.connected or "-"))
    if report.stream_error is not None:
        err = report.stream_error
        text = f" ({err['text']})" if err["text"] else ""
        rows.append((t("probe.label.stream_error", lang), err["condition"] + text))
    reached = report.dialback["before_tls"] is not None  # the first features arrived
    rows.append((t("probe.label.starttls", lang),
                 _offer(report.starttls["offered"] if reached else None, report.starttls["required"], lang)))
    rows.append((t("probe.label.dialback_before", lang), _offer(report.dialback["before_tls"], lang=lang)))
    if report.tls is not None:
        rows.append((t("probe.label.tls", lang), f"{report.tls['version']} {report.tls['cipher']}"))
    cert = report.certificate
    if cert is not None:
        lines = [
            t("probe.cert_entry", lang, index=i, subject=c["subject"], issuer=c["issuer"], expires=c["not_after"])
            for i, c in enumerate(cert["chain"])
        ] or [t("probe.none", lang)]
        lines.append(t("probe.cert_valid", lang) if cert["chain_valid"]
                     else t("probe.cert_invalid", lang, error=cert["error"] or "-"))
        lines.append(t("probe.cert_matches" if cert["matches_domain"] else "probe.cert_mismatch", lang,
                       domain=report.domain))
        rows.append((t("probe.label.certificate", lang), lines[0]))
        rows += [("", line) for line in lines[1:]]
    rows.append((t("probe.label.sasl", lang), " ".join(report.sasl_mechanisms) or t("probe.none", lang)))
    rows.append((t("probe.label.dialback_after", lang), _offer(report.dialback["after_tls"], lang=lang)))
    settings = report.settings
    source = str(settings.get("local_source", "default"))
    rows.append((t("probe.label.local", lang),
                 t(f"probe.source.{source}", lang, settings=_settings_text(settings.get("local")),
                   domain=report.domain)))
    rows.append((t("probe.label.remote", lang), _settings_text(settings.get("remote_observed"))))
    rows.append((t("probe.label.method", lang), report.method or t("probe.no_method", lang)))
    for i, reason in enumerate(report.reasons):
        rows.append((t("probe.label.reasons", lang) if i == 0 else "", "- " + str(reason["text"])))
    heading = t("probe.heading", lang, domain=report.domain, from_=report.from_domain)
    return heading + "\n" + key_values(rows)


@click.command("probe")
@click.argument("domain", type=DOMAIN)
@click.option("--from", "from_domain", type=DOMAIN, default=DEFAULT_FROM, show_default=True,
              help="Our domain in the stream header (the peer looks its settings up by it).")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path),
              help="The partner store to read our settings from (default: fedgate --db, else the default store).")
@click.option("--port", type=click.IntRange(1, 65535), help="Connect to this port instead of the resolved one.")
@click.option("--connect", type=FieldType("connect", _connect, "HOST:PORT"),
              help="Connect here, skipping DNS (the stream is still addressed to DOMAIN).")
@click.option("--format", "fmt", type=choice("format", ("text", "json")), default="text", show_default=True)
@click.option("--cafile", "cafiles", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Extra trust anchors (PEM), besides the system store. Repeatable.")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=10.0, show_default=True,
              help="Seconds to wait for each answer.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Our certificate chain (PEM) to present after STARTTLS, as the gateway would; needs --key.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The key for --cert.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Take --from's certificate, the trust anchors and the database from this fedgate.toml.")
@pass_state
def probe_command(
    state: State, domain: str, from_domain: str, db: Path | None, port: int | None, connect: str | None, fmt: str,
    cafiles: tuple[Path, ...], timeout: float, cert: Path | None, key: Path | None, config_path: Path | None,
) -> int:
    """Connect to DOMAIN as a server would, report what it offers (STARTTLS, certificate, SASL, dialback) and
    which method our settings for it would use. Exit 0 when a method is possible, 1 when not."""
    lang = current_language()
    if (cert is None) != (key is None):
        raise LineUsageError(t("cli.error.missing", lang, field="--key" if key is None else "--cert",
                               allowed=t("cli.allowed.see_help", lang)))
    credentials = Credentials(cert, key) if cert is not None and key is not None else None
    use_system = True
    config_db: Path | None = None
    if config_path is not None:
        try:
            cfg = config_mod.load(config_path)
        except config_mod.ConfigError as exc:
            raise LineUsageError(t("ops.config_error", lang, key=exc.key, problem=exc.problem)) from None
        local = cfg.gateway.domains.get(from_domain)
        if credentials is None and local is not None:
            credentials = local.credentials
        cafiles = (*cafiles, *cfg.gateway.trust.cafiles)
        use_system = cfg.gateway.trust.use_system
        config_db = cfg.database
    path = db or state.db or config_db or default_db_path()
    store = SqliteStore(path) if path.exists() else None  # never create a store just to look
    try:
        report = asyncio.run(probe(domain, from_domain=from_domain, store=store, port=port, connect=connect,
                                   cafiles=cafiles, use_system_trust=use_system, timeout=timeout, lang=lang,
                                   credentials=credentials))
    finally:
        if store is not None:
            store.close()
    click.echo(to_json(report.as_dict()) if fmt == "json" else render(report, lang))
    return 0 if report.ok else 1
