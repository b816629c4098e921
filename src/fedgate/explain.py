"""Policy results in words, in the chosen language. The one place that turns policy codes into text,
so the CLI, the logs of the wire engine and diagnostics all say the same thing."""

from __future__ import annotations

from collections.abc import Iterable

from .i18n import t
from .policy import Exclusion, Method, Note, Outcome


def method_name(method: Method, lang: str | None = None) -> str:
    return t(f"method.{method.value}", lang)


def note_text(note: Note, lang: str | None = None) -> str:
    return t(f"note.{note.value}", lang)


def exclusion_text(exclusion: Exclusion, lang: str | None = None) -> str:
    return t(
        f"rule.{exclusion.rule.value}",
        lang,
        side=t(f"side.{exclusion.side}", lang),
        method=method_name(exclusion.method, lang),
    )


def outcome_text(outcome: Outcome, lang: str | None = None) -> str:
    """One paragraph: the verdict, then each reason a more preferred method was passed over."""
    if outcome.method is not None:
        head = t("negotiate.uses", lang, method=method_name(outcome.method, lang))
    else:
        head = t("negotiate.failed", lang)
    if not outcome.excluded:
        return head
    return t("negotiate.with_reasons", lang, verdict=head, reasons=exclusions_text(outcome.excluded, lang))


def exclusions_text(excluded: Iterable[Exclusion], lang: str | None = None) -> str:
    """Every rule that ruled a method out, in one run of clauses (no closing full stop)."""
    return t("negotiate.reason_separator", lang).join(exclusion_text(e, lang) for e in excluded)


def failure_reason(excluded: Iterable[Exclusion], lang: str | None = None, *, fallback: str | None = None) -> str:
    """The one-line reason for a failed negotiation, in the policy engine's words: every rule that ruled a
    method out, or ``fallback`` (default: "no method is allowed by both sides") when none was recorded."""
    return exclusions_text(excluded, lang) or fallback or t("negotiate.no_common_method", lang)
