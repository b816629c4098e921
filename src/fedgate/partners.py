"""Federation partners and gateway-wide settings: the records, their field validation, IDNA normalisation.

Pure: no I/O. Names follow the Lync cmdlets (``New-CsXmppAllowedPartner``, ``CsXmppGatewayConfiguration``).

Every field has one parser (``PARTNER_FIELDS`` / ``GATEWAY_FIELDS``) that accepts the typed value or its text
form and returns the typed value, or raises ``FieldError`` (a ``fedgate.policy.SettingError``) naming the field,
what is wrong and what is allowed. The records run every field through its parser on construction, so a
``Partner`` or ``GatewaySettings`` that exists is well formed. The (tls, sasl, dialback) triple is judged by
``fedgate.policy.evaluate`` alone: settings with errors raise ``InvalidSettings`` carrying every error;
warnings are kept on the evaluation for the caller to show.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import ipaddress
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

import idna

from .policy import Evaluation, Note, Sasl, SettingError, Settings, Tls, evaluate, parse_bool, parse_sasl, parse_tls

MAX_DOMAIN_LENGTH = 253
MAX_DESCRIPTION_LENGTH = 1024
MIN_PASSPHRASE_LENGTH = 16


class PartnerType(StrEnum):
    FEDERATED = "federated"
    PUBLIC_VERIFIED = "public_verified"
    PUBLIC_UNVERIFIED = "public_unverified"


class FieldError(SettingError):
    """A field value that is not allowed.

    ``problem`` is a stable code for what is wrong (message key ``problem.<problem>``); the allowed form is
    described by the message key ``allowed.<kind>``, or listed in ``allowed`` for a closed set of values.
    ``details`` fills in the problem's text (``problem.above_connection_limit`` names the other limit).
    """

    def __init__(
        self,
        field_name: str,
        value: object,
        problem: str,
        kind: str | None = None,
        allowed: tuple[str, ...] = (),
        *,
        details: Mapping[str, object] | None = None,
    ) -> None:
        self.problem = problem
        self.kind = kind or field_name
        self.details: Mapping[str, object] = details or {}  # fields of the problem's text
        super().__init__(field_name, value, allowed or (f"<{self.kind}>",))
        self.args = (f"{field_name}: {value!r} is not allowed ({problem})",)


class InvalidSettings(SettingError):
    """A (tls, sasl, dialback) triple with which no authentication can succeed. ``errors`` lists every reason."""

    def __init__(self, field_name: str, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        super().__init__(field_name, str(evaluation.settings), ("TLS/SASL/DIALBACK settings with a usable method",))
        self.args = (f"{field_name}: {evaluation.settings} refused: {', '.join(n.value for n in self.errors)}",)

    @property
    def errors(self) -> tuple[Note, ...]:
        return self.evaluation.errors


def check_settings(field_name: str, settings: Settings) -> Evaluation:
    """The policy engine's evaluation; raises ``InvalidSettings`` when it has errors."""
    evaluation = evaluate(settings)
    if evaluation.errors:
        raise InvalidSettings(field_name, evaluation)
    return evaluation


# --- field parsers ---------------------------------------------------------------------------------------------

def _a_label_length(label: str) -> int:
    return len(label) if label.isascii() else len("xn--") + len(label.encode("punycode"))


def normalize_domain(value: object, field_name: str = "domain") -> str:
    """A domain as XMPP compares it (RFC 7622): what people type mapped by UTS 46 (``Bücher.Example``,
    full-width letters, ideographic full stops), then each label checked and converted by IDNA 2008 into lower
    case A-labels: ``xn--bcher-kva.example``. ``faß.example`` keeps its ß (``xn--fa-hia.example``); a label
    IDNA 2008 does not allow (``☃``, ``under_score``, a broken ``xn--`` form) is refused naming the field."""
    if not isinstance(value, str):
        raise FieldError(field_name, value, "not_text", "domain")
    text = value[:-1] if value.endswith(".") and len(value) > 1 else value
    checks: tuple[tuple[bool, str], ...] = (
        (text == "", "empty"),
        (any(c.isspace() for c in text), "space"),
        ("@" in text, "at_sign"),
        ("/" in text, "slash"),
        (":" in text, "port"),
    )
    for failed, problem in checks:
        if failed:
            raise FieldError(field_name, value, problem, "domain")
    try:
        mapped = idna.uts46_remap(text, std3_rules=True, transitional=False)
    except idna.IDNAError:
        raise FieldError(field_name, value, "bad_label", "domain") from None
    if mapped.endswith(".") and not text.endswith("."):  # a trailing ideographic full stop, say
        mapped = mapped[:-1]
    labels: list[str] = []
    for label in mapped.split("."):
        if not label:
            raise FieldError(field_name, value, "empty_label", "domain")
        try:
            labels.append(idna.alabel(label).decode("ascii").lower())
        except (idna.IDNAError, UnicodeError):
            problem = "label_too_long" if _a_label_length(label) > 63 else "bad_label"
            raise FieldError(field_name, value, problem, "domain") from None
    domain = ".".join(labels)
    if len(domain) > MAX_DOMAIN_LENGTH:
        raise FieldError(field_name, value, "too_long", "domain")
    return domain


def domain_to_unicode(domain: str) -> str:
    """The U-label form for display (``xn--bcher-kva.example`` -> ``bücher.example``)."""
    try:
        return str(idna.decode(domain))
    except (idna.IDNAError, UnicodeError):
        return domain


def parse_domains(value: object, field_name: str = "additional_domains") -> tuple[str, ...]:
    """A list of domains, normalised, duplicates dropped, order kept."""
    if isinstance(value, str):
        items: Iterable[object] = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, Iterable):
        items = value
    else:
        raise FieldError(field_name, value, "not_list", "domain")
    result: list[str] = []
    for item in items:
        domain = normalize_domain(item.strip() if isinstance(item, str) else item, field_name)
        if domain not in result:
            result.append(domain)
    return tuple(result)


def parse_port(field_name: str, value: object, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise FieldError(field_name, value, "bad_port", field_name)
    return int(text)


def parse_proxy_fqdn(value: object) -> str | None:
    """``host[:port]``: a domain, an IPv4 address or a bracketed IPv6 address; None or "" for no proxy."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FieldError("proxy_fqdn", value, "not_text")
    host, port = value, None
    if value.startswith("["):
        inner, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise FieldError("proxy_fqdn", value, "bad_host")
        host, port = inner, rest[1:] if rest else None
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise FieldError("proxy_fqdn", value, "bad_host") from None
    else:
        if value.count(":") > 1:
            try:
                ipaddress.IPv6Address(value)
            except ValueError:
                raise FieldError("proxy_fqdn", value, "too_many_colons") from None
            raise FieldError("proxy_fqdn", value, "ipv6_needs_brackets")
        if value.count(":") == 1:
            host, port = value.split(":")
        try:
            host = str(ipaddress.IPv4Address(host))
        except ValueError:
            try:
                host = normalize_domain(host, "proxy_fqdn")
            except FieldError as exc:
                raise FieldError("proxy_fqdn", value, exc.problem) from None
    if port is None:
        return host
    return f"{host}:{parse_port('proxy_fqdn', value, port)}"


def positive_int(field_name: str, *, optional: bool = False) -> Callable[[object], Any]:
    """A parser for a whole number >= 1; with ``optional`` also None ("default")."""
    kind = "optional_positive_int" if optional else "positive_int"

    def parse(value: object) -> int | None:
        if optional and (value is None or (isinstance(value, str) and value.strip().lower() in ("", "default"))):
            return None
        if isinstance(value, bool):
            raise FieldError(field_name, value, "not_integer", kind)
        if isinstance(value, str):
            text = value.strip()
            if not text.lstrip("-").isdigit():
                raise FieldError(field_name, value, "not_integer", kind)
            value = int(text)
        if not isinstance(value, int):
            raise FieldError(field_name, value, "not_integer", kind)
        if value < 1:
            raise FieldError(field_name, value, "too_small", kind)
        return value

    return parse


def parse_partner_type(value: object) -> PartnerType:
    allowed = tuple(p.value for p in PartnerType)
    text = value.strip().lower().replace("-", "_") if isinstance(value, str) else value
    if text not in allowed:
        raise FieldError("partner_type", value, "not_allowed", "partner_type", allowed)
    return PartnerType(text)


def parse_description(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FieldError("description", value, "not_text")
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise FieldError("description", value, "too_long")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise FieldError("description", value, "control_character")
    return value


def parse_passphrase(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError("dialback_passphrase", value, "not_text")
    if len(value) < MIN_PASSPHRASE_LENGTH:
        raise FieldError("dialback_passphrase", "…", "too_short")
    if any(c.isspace() for c in value):
        raise FieldError("dialback_passphrase", "…", "space")
    if not value.isprintable():
        raise FieldError("dialback_passphrase", "…", "control_character")
    return value


def new_passphrase() -> str:
    """A fresh random dialback passphrase (256 bits)."""
    return secrets.token_urlsafe(32)


REFUSE = "refuse"


def parse_unlisted_domains(value: object) -> Settings | None:
    """``refuse`` (None) or a settings triple such as ``optional/optional/true``, checked by the policy engine."""
    if value is None or isinstance(value, Settings):
        settings = value
    elif isinstance(value, str) and value.strip().lower() == REFUSE:
        settings = None
    elif isinstance(value, str):
        try:
            settings = Settings.parse_triple(value.strip())
        except SettingError:
            raise FieldError("unlisted_domains", value, "not_allowed") from None
    elif isinstance(value, Mapping):
        try:
            settings = Settings.parse(value["tls"], value["sasl"], value["dialback"])
        except (SettingError, KeyError):
            raise FieldError("unlisted_domains", value, "not_allowed") from None
    else:
        raise FieldError("unlisted_domains", value, "not_allowed")
    if settings is not None:
        check_settings("unlisted_domains", settings)
    return settings


def _parse_bool(field_name: str) -> Callable[[object], bool]:
    return functools.partial(parse_bool, field_name)


PARTNER_FIELDS: dict[str, Callable[[object], Any]] = {
    "domain": normalize_domain,
    "additional_domains": parse_domains,
    "tls": parse_tls,
    "sasl": parse_sasl,
    "dialback": _parse_bool("dialback"),
    "partner_type": parse_partner_type,
    "proxy_fqdn": parse_proxy_fqdn,
    "enable_keepalive": _parse_bool("enable_keepalive"),
    "connection_limit": positive_int("connection_limit", optional=True),
    "description": parse_description,
}

GATEWAY_FIELDS: dict[str, Callable[[object], Any]] = {
    "connection_limit": positive_int("connection_limit"),
    "partner_connection_limit": positive_int("partner_connection_limit"),
    "dialback_passphrase": parse_passphrase,
    "keepalive_interval": positive_int("keepalive_interval"),
    "stream_establishment_timeout": positive_int("stream_establishment_timeout"),
    "stream_inactivity_timeout": positive_int("stream_inactivity_timeout"),
    "subscription_refresh_interval": positive_int("subscription_refresh_interval"),
    "log_message_bodies": _parse_bool("log_message_bodies"),
    "max_stanza_size": positive_int("max_stanza_size"),
    "unlisted_domains": parse_unlisted_domains,
}

_R = TypeVar("_R")


def _coerce(record: object, parsers: Mapping[str, Callable[[object], Any]]) -> None:
    for name, parse in parsers.items():
        object.__setattr__(record, name, parse(getattr(record, name)))


def _build(cls: Callable[..., _R], parsers: Mapping[str, Callable[[object], Any]], values: Mapping[str, object]) -> _R:
    unknown = sorted(set(values) - set(parsers))
    if unknown:
        raise FieldError("field", unknown[0], "unknown_field", allowed=tuple(parsers))
    return cls(**values)


@dataclass(frozen=True)
class Partner:
    """One allowed federation partner (New-CsXmppAllowedPartner). Identity: ``domain``."""

    domain: str
    additional_domains: tuple[str, ...] = ()
    tls: Tls = Tls.REQUIRED
    sasl: Sasl = Sasl.REQUIRED
    dialback: bool = True
    partner_type: PartnerType = PartnerType.PUBLIC_UNVERIFIED
    proxy_fqdn: str | None = None
    enable_keepalive: bool = True
    connection_limit: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _coerce(self, PARTNER_FIELDS)
        if self.domain in self.additional_domains:
            raise FieldError("additional_domains", self.domain, "same_as_domain", "domain")
        check_settings("settings", self.settings)

    @classmethod
    def parse(cls, **values: object) -> Partner:
        """From field values in text or typed form (CLI options, JSON, database rows)."""
        return _build(cls, PARTNER_FIELDS, values)

    @property
    def settings(self) -> Settings:
        return Settings(self.tls, self.sasl, self.dialback)

    @property
    def evaluation(self) -> Evaluation:
        return evaluate(self.settings)

    @property
    def domains(self) -> tuple[str, ...]:
        """The domain and every additional domain: all the names this partner answers for."""
        return (self.domain, *self.additional_domains)

    def matches(self, pattern: str) -> bool:
        """Whether the shell wildcard ``pattern`` (``*.example.com``, ``bü*``) matches the domain or an additional
        domain, in any case, written either way: as stored (A-labels) or as people read it (U-labels)."""
        wanted = pattern.strip().lower()
        return any(
            fnmatch.fnmatchcase(form, wanted) for name in self.domains for form in {name, domain_to_unicode(name)}
        )

    def changed(self, **changes: object) -> Partner:
        """A copy with only the named fields changed; the merged result is validated as a whole."""
        return Partner.parse(**{**self.as_dict(), **changes})

    def edit_additional_domains(self, add: Iterable[object] = (), remove: Iterable[object] = ()) -> Partner:
        """A copy with each of ``remove`` taken out of the additional domains (``FieldError`` ``not_listed`` when
        the partner does not have it), then each of ``add`` appended unless already there; the others stay."""
        current = list(self.additional_domains)
        for gone in parse_domains(list(remove)):
            if gone not in current:
                raise FieldError("additional_domains", gone, "not_listed", "listed", tuple(current) or ("-",))
            current.remove(gone)
        return self.changed(additional_domains=[*current, *parse_domains(list(add))])

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready field values; ``Partner.parse(**p.as_dict()) == p``."""
        return {
            "domain": self.domain,
            "additional_domains": list(self.additional_domains),
            "tls": self.tls.value,
            "sasl": self.sasl.value,
            "dialback": self.dialback,
            "partner_type": self.partner_type.value,
            "proxy_fqdn": self.proxy_fqdn,
            "enable_keepalive": self.enable_keepalive,
            "connection_limit": self.connection_limit,
            "description": self.description,
        }


@dataclass(frozen=True)
class GatewaySettings:
    """Gateway-wide settings (CsXmppGatewayConfiguration). Times are in seconds, sizes in bytes."""

    connection_limit: int = 1000
    partner_connection_limit: int = 20
    dialback_passphrase: str | None = field(default=None, repr=False)
    keepalive_interval: int = 300
    stream_establishment_timeout: int = 60
    stream_inactivity_timeout: int = 600
    subscription_refresh_interval: int = 28800
    log_message_bodies: bool = False
    max_stanza_size: int = 262144
    unlisted_domains: Settings | None = None
    """None: domains not listed as partners are refused; else they are accepted with these settings."""

    def __post_init__(self) -> None:
        _coerce(self, GATEWAY_FIELDS)

    @classmethod
    def parse(cls, **values: object) -> GatewaySettings:
        return _build(cls, GATEWAY_FIELDS, values)

    def changed(self, **changes: object) -> GatewaySettings:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return GatewaySettings.parse(**{**values, **changes})

    def check_limits(self) -> GatewaySettings:
        """These settings, when the per-partner connection limit is within the total; else ``FieldError``
        (``above_connection_limit``) naming both fields. Not checked on construction: a store written before this
        rule (or a test of the total limit alone) still loads; ``fedgate gateway set`` refuses such a change."""
        if self.partner_connection_limit > self.connection_limit:
            raise FieldError(
                "partner_connection_limit",
                self.partner_connection_limit,
                "above_connection_limit",
                "partner_connection_limit",
                details={"connection_limit": self.connection_limit},
            )
        return self

    def as_dict(self, *, show_secrets: bool = False) -> dict[str, Any]:
        """JSON-ready values. The passphrase is left out unless ``show_secrets``; ``..._set`` says if there is one."""
        values: dict[str, Any] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["unlisted_domains"] = str(self.unlisted_domains) if self.unlisted_domains else REFUSE
        passphrase = values.pop("dialback_passphrase")
        values["dialback_passphrase_set"] = passphrase is not None
        if show_secrets:
            values["dialback_passphrase"] = passphrase
        return values


__all__ = [
    "GATEWAY_FIELDS",
    "PARTNER_FIELDS",
    "FieldError",
    "GatewaySettings",
    "InvalidSettings",
    "Partner",
    "PartnerType",
    "Sasl",
    "Tls",
    "check_settings",
    "domain_to_unicode",
    "normalize_domain",
]
