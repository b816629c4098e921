"""Negotiation policy: which server-to-server authentication methods a partner's settings allow.

Pure functions over plain data, no I/O. Every other module (the wire engine, the CLI, diagnostics) asks
this module; none re-derives the matrix.

The rules below reproduce the seed's complete 18-row matrix (tests compare them with the shared data file):

* ``sasl_tls``     needs TLS (tls != not_supported) and SASL (sasl != not_supported).
* ``tls_dialback`` needs TLS and dialback on, and is never used when TLS and SASL are both required
  (SASL EXTERNAL is then the only method; dialback is inert).
* ``tcp_dialback`` needs dialback on and TLS not required (plain TCP is never allowed when TLS is required).

Two sides negotiate the most preferred method both allow; ``sasl_tls`` also needs the initiating side's
certificate to be valid for its domain.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TypeVar


class Tls(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    NOT_SUPPORTED = "not_supported"


class Sasl(StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    NOT_SUPPORTED = "not_supported"


class Method(StrEnum):
    """Authentication methods, in preference order (the enum's order is the preference)."""

    SASL_TLS = "sasl_tls"
    TLS_DIALBACK = "tls_dialback"
    TCP_DIALBACK = "tcp_dialback"

    @property
    def uses_tls(self) -> bool:
        return self is not Method.TCP_DIALBACK


METHODS_IN_PREFERENCE_ORDER: tuple[Method, ...] = tuple(Method)


class Note(StrEnum):
    """Stable codes of the seed's warnings and errors (names as in the shared matrix file)."""

    DIALBACK_INERT = "dialback_inert_when_tls_and_sasl_required"
    SASL_NEEDS_TLS = "sasl_needs_tls"
    NO_USABLE_METHOD = "no_usable_method"
    SASL_OR_DIALBACK_MUST_BE_ENABLED = "sasl_or_dialback_must_be_enabled"

    @property
    def is_error(self) -> bool:
        return self in (Note.NO_USABLE_METHOD, Note.SASL_OR_DIALBACK_MUST_BE_ENABLED)


class Rule(StrEnum):
    """Why one side's settings rule out one method."""

    TLS_NOT_SUPPORTED = "tls_not_supported"  # rules out sasl_tls and tls_dialback
    SASL_NOT_SUPPORTED = "sasl_not_supported"  # rules out sasl_tls
    DIALBACK_OFF = "dialback_off"  # rules out both dialback methods
    TLS_REQUIRED = "tls_required"  # rules out tcp_dialback
    TLS_AND_SASL_REQUIRED = "tls_and_sasl_required"  # rules out tls_dialback (dialback inert)
    CERTIFICATE_INVALID = "certificate_invalid"  # rules out sasl_tls (initiator's certificate)
    # Seen on the wire rather than read from settings: the peer's offer left the method out.
    NOT_OFFERED = "not_offered"


Side = Literal["local", "remote"]

# Which setting each rule is about, for messages that name "which side's which setting".
RULE_SETTING: dict[Rule, str] = {
    Rule.TLS_NOT_SUPPORTED: "tls",
    Rule.SASL_NOT_SUPPORTED: "sasl",
    Rule.DIALBACK_OFF: "dialback",
    Rule.TLS_REQUIRED: "tls",
    Rule.TLS_AND_SASL_REQUIRED: "sasl",
    Rule.CERTIFICATE_INVALID: "certificate",
    Rule.NOT_OFFERED: "features",
}


@dataclass(frozen=True, order=True)
class Settings:
    """One side's negotiation settings for one partner."""

    tls: Tls = Tls.REQUIRED
    sasl: Sasl = Sasl.REQUIRED
    dialback: bool = True

    @classmethod
    def parse(cls, tls: str, sasl: str, dialback: bool | str) -> Settings:
        """Build from strings; raises ``SettingError`` naming the field and the allowed values."""
        return cls(parse_tls(tls), parse_sasl(sasl), parse_bool("dialback", dialback))

    @classmethod
    def parse_triple(cls, text: str) -> Settings:
        """``required/optional/true`` -> Settings (the CLI's ``--local``/``--remote`` form)."""
        parts = text.split("/")
        if len(parts) != 3:
            raise SettingError("settings", text, ("TLS/SASL/DIALBACK, e.g. required/optional/true",))
        return cls.parse(parts[0], parts[1], parts[2])

    def as_dict(self) -> dict[str, str | bool]:
        return {"tls": self.tls.value, "sasl": self.sasl.value, "dialback": self.dialback}

    def __str__(self) -> str:
        return f"{self.tls.value}/{self.sasl.value}/{str(self.dialback).lower()}"


class SettingError(ValueError):
    """A setting value outside its allowed set. Carries the field name and the allowed values."""

    def __init__(self, field_name: str, value: object, allowed: tuple[str, ...]) -> None:
        self.field = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field_name}: {value!r} is not one of {', '.join(allowed)}")


_Level = TypeVar("_Level", Tls, Sasl)


def _parse_level(field_name: str, levels: type[_Level], value: object) -> _Level:
    """One of ``levels`` from its text (any case, '-' for '_') or itself; ``SettingError`` for anything else."""
    if isinstance(value, levels):
        return value
    if isinstance(value, str):
        try:
            return levels(value.strip().lower().replace("-", "_"))
        except ValueError:
            pass
    raise SettingError(field_name, value, tuple(level.value for level in levels))


def parse_tls(value: object) -> Tls:
    return _parse_level("tls", Tls, value)


def parse_sasl(value: object) -> Sasl:
    return _parse_level("sasl", Sasl, value)


_TRUE = {"true", "on", "yes", "1"}
_FALSE = {"false", "off", "no", "0"}


def parse_bool(field_name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    v = value.strip().lower() if isinstance(value, str) else None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise SettingError(field_name, value, ("true", "false"))


ALL_SETTINGS: tuple[Settings, ...] = tuple(
    Settings(tls, sasl, db) for sasl, tls, db in itertools.product(Sasl, Tls, (True, False))
)
"""The 18 combinations, in the seed table's order (SASL outermost, then TLS, then dialback on/off)."""


def exclusions(settings: Settings, method: Method) -> tuple[Rule, ...]:
    """The rules of ``settings`` that rule ``method`` out; empty when the method is allowed."""
    rules: list[Rule] = []
    if method is Method.SASL_TLS:
        if settings.tls is Tls.NOT_SUPPORTED:
            rules.append(Rule.TLS_NOT_SUPPORTED)
        if settings.sasl is Sasl.NOT_SUPPORTED:
            rules.append(Rule.SASL_NOT_SUPPORTED)
    elif method is Method.TLS_DIALBACK:
        if settings.tls is Tls.NOT_SUPPORTED:
            rules.append(Rule.TLS_NOT_SUPPORTED)
        if not settings.dialback:
            rules.append(Rule.DIALBACK_OFF)
        if settings.tls is Tls.REQUIRED and settings.sasl is Sasl.REQUIRED:
            rules.append(Rule.TLS_AND_SASL_REQUIRED)
    else:
        if settings.tls is Tls.REQUIRED:
            rules.append(Rule.TLS_REQUIRED)
        if not settings.dialback:
            rules.append(Rule.DIALBACK_OFF)
    return tuple(rules)


def allows(settings: Settings, method: Method) -> bool:
    return not exclusions(settings, method)


def expected_methods(settings: Settings) -> tuple[Method, ...]:
    """Methods these settings allow, most preferred first."""
    return tuple(m for m in METHODS_IN_PREFERENCE_ORDER if allows(settings, m))


def notes(settings: Settings) -> tuple[Note, ...]:
    found: list[Note] = []
    if settings.tls is Tls.REQUIRED and settings.sasl is Sasl.REQUIRED and settings.dialback:
        found.append(Note.DIALBACK_INERT)
    if settings.sasl is not Sasl.NOT_SUPPORTED and settings.tls is not Tls.REQUIRED:
        found.append(Note.SASL_NEEDS_TLS)
    if settings.sasl is not Sasl.NOT_SUPPORTED and settings.tls is Tls.NOT_SUPPORTED and not settings.dialback:
        found.append(Note.NO_USABLE_METHOD)
    if settings.sasl is Sasl.NOT_SUPPORTED and not settings.dialback:
        found.append(Note.SASL_OR_DIALBACK_MUST_BE_ENABLED)
    return tuple(found)


@dataclass(frozen=True)
class Evaluation:
    settings: Settings
    expected_methods: tuple[Method, ...]
    notes: tuple[Note, ...]

    @property
    def valid(self) -> bool:
        return bool(self.expected_methods)

    @property
    def errors(self) -> tuple[Note, ...]:
        return tuple(n for n in self.notes if n.is_error)

    @property
    def warnings(self) -> tuple[Note, ...]:
        return tuple(n for n in self.notes if not n.is_error)

    def as_row(self) -> dict[str, object]:
        """The shared matrix file's row shape."""
        return {
            **self.settings.as_dict(),
            "expected_methods": [m.value for m in self.expected_methods],
            "valid": self.valid,
            "notes": [n.value for n in self.notes],
        }


def evaluate(settings: Settings) -> Evaluation:
    return Evaluation(settings, expected_methods(settings), notes(settings))


def matrix() -> tuple[Evaluation, ...]:
    return tuple(evaluate(s) for s in ALL_SETTINGS)


@dataclass(frozen=True)
class Exclusion:
    """``side``'s ``rule`` rules out ``method``."""

    method: Method
    side: Side
    rule: Rule

    @property
    def setting(self) -> str:
        return RULE_SETTING[self.rule]

    def as_dict(self) -> dict[str, str]:
        return {"method": self.method.value, "side": self.side, "setting": self.setting, "rule": self.rule.value}


@dataclass(frozen=True)
class Outcome:
    """What two sides negotiate: the method, or None, and why each more preferred method was ruled out."""

    local: Settings
    remote: Settings
    initiator: Side
    initiator_certificate_valid: bool
    method: Method | None
    excluded: tuple[Exclusion, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.method is not None

    @property
    def reason(self) -> str | None:
        """A stable code: None on success, else why nothing remained."""
        if self.method is not None:
            return None
        return "no_common_method"

    def as_dict(self) -> dict[str, object]:
        return {
            "local": self.local.as_dict(),
            "remote": self.remote.as_dict(),
            "initiator": self.initiator,
            "initiator_certificate_valid": self.initiator_certificate_valid,
            "method": self.method.value if self.method else None,
            "reason": self.reason,
            "excluded": [e.as_dict() for e in self.excluded],
        }


def negotiate(
    local: Settings,
    remote: Settings,
    *,
    initiator: Side = "local",
    initiator_certificate_valid: bool = True,
) -> Outcome:
    """The method ``local`` (our settings for the partner) and ``remote`` (the partner's for us) will use.

    Each method is tried in preference order; the first that neither side rules out wins. Every method passed
    over is reported with each side's rule against it, so a failure can say exactly what ruled out what.
    """
    excluded: list[Exclusion] = []
    for method in METHODS_IN_PREFERENCE_ORDER:
        against: list[Exclusion] = [Exclusion(method, "local", r) for r in exclusions(local, method)]
        against += [Exclusion(method, "remote", r) for r in exclusions(remote, method)]
        if method is Method.SASL_TLS and not initiator_certificate_valid:
            against.append(Exclusion(method, initiator, Rule.CERTIFICATE_INVALID))
        if not against:
            return Outcome(local, remote, initiator, initiator_certificate_valid, method, tuple(excluded))
        excluded += against
    return Outcome(local, remote, initiator, initiator_certificate_valid, None, tuple(excluded))


def all_pairs(*, initiator_certificate_valid: bool = True) -> tuple[Outcome, ...]:
    """All 324 (local, remote) pairs, local initiating."""
    return tuple(
        negotiate(a, b, initiator_certificate_valid=initiator_certificate_valid)
        for a in ALL_SETTINGS
        for b in ALL_SETTINGS
    )
