"""Every message exists in every language, with the same placeholders, and renders."""

from __future__ import annotations

import string

import pytest

from fedgate import i18n


def _fields(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


@pytest.mark.parametrize("key", sorted(i18n.CATALOGUE))
def test_every_message_in_every_language(key: str) -> None:
    texts = i18n.CATALOGUE[key]
    assert set(texts) == set(i18n.LANGUAGES), key
    english_fields = _fields(texts["en"])
    for lang in i18n.LANGUAGES:
        assert texts[lang].strip(), (key, lang)
        assert _fields(texts[lang]) == english_fields, (key, lang)
        rendered = i18n.t(key, lang, **{f: f"<{f}>" for f in english_fields})
        assert "{" not in rendered.replace("{{", "")
    # The translations are written, not copied: at least one differs from English unless the text
    # is a bare acronym such as "TLS".
    if not texts["en"].isupper():
        assert texts["zh-TW"] != texts["en"] or texts["ja"] != texts["en"], key


@pytest.mark.parametrize(
    ("env", "lang"),
    [
        ({}, "en"),
        ({"LANG": "ja_JP.UTF-8"}, "ja"),
        ({"LANG": "zh_TW.UTF-8"}, "zh-TW"),
        ({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LC_MESSAGES": "zh_HK.UTF-8", "LANG": "en_US.UTF-8"}, "zh-TW"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
    ],
)
def test_language_from_environment(env: dict[str, str], lang: str) -> None:
    assert i18n.detect_language(env) == lang


@pytest.mark.parametrize(("lang", "word", "instead"), [("zh-TW", "協力廠商", "協力夥伴")])
def test_one_word_for_partner(lang: str, word: str, instead: str) -> None:
    """A partner is called the same everywhere in a language."""
    uses = [key for key, texts in i18n.CATALOGUE.items() if word in texts[lang]]
    assert uses == [], f"{uses}: say {instead}"
    assert any(instead in texts[lang] for texts in i18n.CATALOGUE.values())
