"""The one message catalogue: every text a person reads, in English, Traditional Chinese and Japanese.

Texts live in per-concern modules (``policy``, ``cli``, ``s2s``, ...) so that each part of the program owns
its wording; they are merged here into one table, and a key may be defined only once.

Use ``t(key, lang, **fields)``. The language is ``en``, ``zh-TW`` or ``ja``; ``detect_language()`` reads
LC_ALL / LC_MESSAGES / LANG the way gettext does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from . import cli as _cli
from . import ops as _ops
from . import policy as _policy
from . import router as _router
from . import s2s as _s2s
from . import serve as _serve

LANGUAGES: tuple[str, ...] = ("en", "zh-TW", "ja")
DEFAULT_LANGUAGE = "en"


def _merge(*tables: Mapping[str, Mapping[str, str]]) -> dict[str, Mapping[str, str]]:
    merged: dict[str, Mapping[str, str]] = {}
    for table in tables:
        for key, texts in table.items():
            if key in merged:
                raise RuntimeError(f"message key defined twice: {key}")
            merged[key] = texts
    return merged


CATALOGUE: dict[str, Mapping[str, str]] = _merge(
    _policy.MESSAGES, _cli.MESSAGES, _s2s.MESSAGES, _ops.MESSAGES, _router.MESSAGES, _serve.MESSAGES
)


def normalize_language(value: str | None) -> str | None:
    """Map a locale or language tag to one of LANGUAGES; None when it names none of them."""
    if not value:
        return None
    tag = value.split(".")[0].split("@")[0].replace("_", "-").lower()
    if tag in ("c", "posix"):
        return "en"
    if tag.startswith("zh"):
        # Only Traditional Chinese is written; it is closer for any Chinese reader than English.
        return "zh-TW"
    if tag.startswith("ja"):
        return "ja"
    if tag.startswith("en"):
        return "en"
    return None


def detect_language(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(var)
        if value:
            # gettext stops at the first variable that is set, whatever it names.
            return normalize_language(value) or DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


_current = DEFAULT_LANGUAGE


def set_language(lang: str) -> None:
    global _current
    norm = normalize_language(lang)
    if norm is None:
        raise ValueError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
    _current = norm


def current_language() -> str:
    return _current


def t(key: str, lang: str | None = None, /, **fields: object) -> str:
    """The text for ``key`` in ``lang`` (default: the process language) with ``fields`` filled in."""
    texts = CATALOGUE[key]
    language = normalize_language(lang) if lang else _current
    template = texts.get(language or DEFAULT_LANGUAGE) or texts[DEFAULT_LANGUAGE]
    return template.format(**fields)
