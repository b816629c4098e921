"""Partner and gateway records: defaults, IDNA normalisation, each field's validation naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from fedgate.partners import (
    FieldError,
    GatewaySettings,
    InvalidSettings,
    Partner,
    PartnerType,
    domain_to_unicode,
    normalize_domain,
)
from fedgate.policy import ALL_SETTINGS, Note, SettingError, Settings, Tls


def test_defaults_follow_the_cmdlet_and_carry_the_inert_dialback_warning() -> None:
    p = Partner("example.com")
    assert p.settings == Settings("required", "required", True)  # type: ignore[arg-type]
    assert p.partner_type is PartnerType.PUBLIC_UNVERIFIED
    assert (p.enable_keepalive, p.proxy_fqdn, p.connection_limit, p.additional_domains) == (True, None, None, ())
    assert p.evaluation.warnings == (Note.DIALBACK_INERT,)


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("EXAMPLE.com", "example.com"),
        ("Bücher.Example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("example.com.", "example.com"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
        ("例え。テスト", "xn--r8jz45g.xn--zckzah"),  # UTS 46 maps the ideographic full stop
        ("ＥＸＡＭＰＬＥ.com", "example.com"),  # and full-width letters
        ("faß.example", "xn--fa-hia.example"),  # IDNA 2008 keeps ß (IDNA 2003 made it fass.example)
        ("Faß.Example", "xn--fa-hia.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    ],
)
def test_domains_are_idna_normalised(given: str, normal: str) -> None:
    assert normalize_domain(given) == normal
    assert Partner(given).domain == normal


def test_unicode_form_for_display() -> None:
    assert domain_to_unicode("xn--bcher-kva.example") == "bücher.example"
    assert domain_to_unicode("xn--fa-hia.example") == "faß.example"
    assert domain_to_unicode("plain.example") == "plain.example"


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("", "empty"),
        ("exa mple.com", "space"),
        ("user@example.com", "at_sign"),
        ("example.com/resource", "slash"),
        ("example.com:5269", "port"),
        ("a..example", "empty_label"),
        (".example", "empty_label"),
        ("-bad.example", "bad_label"),
        ("under_score.example", "bad_label"),
        ("x" * 64 + ".example", "label_too_long"),
        ("ü" * 60 + ".example", "label_too_long"),  # 60 characters, but a longer A-label
        ("☃.example", "bad_label"),  # a symbol: IDNA 2003 allowed it, IDNA 2008 does not
        ("xn--zz.example", "bad_label"),  # an A-label that does not decode
        ("ab--cd.example", "bad_label"),  # hyphens in the 3rd and 4th places are reserved
        ("a.example。。", "empty_label"),
        (".".join(["abcdefghi"] * 26), "too_long"),  # 259 characters
    ],
)
def test_bad_domains_are_refused_naming_the_field(bad: str, problem: str) -> None:
    with pytest.raises(FieldError) as info:
        Partner(bad)
    assert info.value.field == "domain"
    assert info.value.problem == problem
    assert isinstance(info.value, SettingError)


def test_253_characters_is_the_longest_domain() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])
    assert len(longest) == 253
    assert Partner(longest).domain == longest
    with pytest.raises(FieldError):
        Partner("e" + longest)


def test_additional_domains_are_normalised_and_checked() -> None:
    p = Partner("example.com", additional_domains=("B.example", "b.example", "Bücher.example"))
    assert p.additional_domains == ("b.example", "xn--bcher-kva.example")
    assert p.domains == ("example.com", "b.example", "xn--bcher-kva.example")
    with pytest.raises(FieldError) as info:
        Partner("example.com", additional_domains=("ok.example", "bad domain"))
    assert info.value.field == "additional_domains"
    with pytest.raises(FieldError) as info:
        Partner("example.com", additional_domains=("EXAMPLE.com",))
    assert (info.value.field, info.value.problem) == ("additional_domains", "same_as_domain")


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("tls", "maybe", ("required", "optional", "not_supported")),
        ("sasl", "sometimes", ("required", "optional", "not_supported")),
        ("dialback", "perhaps", ("true", "false")),
        ("enable_keepalive", "often", ("true", "false")),
        ("partner_type", "friend", ("federated", "public_verified", "public_unverified")),
    ],
)
def test_closed_fields_name_themselves_and_their_values(field: str, value: str, allowed: tuple[str, ...]) -> None:
    with pytest.raises(SettingError) as info:
        Partner.parse(domain="example.com", **{field: value})
    assert info.value.field == field
    assert info.value.allowed == allowed


@pytest.mark.parametrize(
    ("value", "normal"),
    [
        ("Proxy.Example.NET", "proxy.example.net"),
        ("proxy.example.net:5270", "proxy.example.net:5270"),
        ("127.0.0.5:5269", "127.0.0.5:5269"),
        ("[::1]:5269", "[::1]:5269"),
        ("[2001:db8:0:0::1]", "[2001:db8::1]"),
        ("", None),
    ],
)
def test_proxy_fqdn_is_host_and_optional_port(value: str, normal: str | None) -> None:
    assert Partner("example.com", proxy_fqdn=value).proxy_fqdn == normal


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("proxy.example:0", "bad_port"),
        ("proxy.example:65536", "bad_port"),
        ("proxy.example:http", "bad_port"),
        ("[::1", "bad_host"),
        ("[nothost]:5269", "bad_host"),
        ("a b:5269", "space"),
        ("::1", "ipv6_needs_brackets"),
        ("2001:db8::1:5269", "ipv6_needs_brackets"),
        ("h:1:2", "too_many_colons"),
    ],
)
def test_bad_proxy_fqdn_names_the_field(value: str, problem: str) -> None:
    with pytest.raises(FieldError) as info:
        Partner("example.com", proxy_fqdn=value)
    assert (info.value.field, info.value.problem) == ("proxy_fqdn", problem)


@pytest.mark.parametrize(("value", "problem"), [("0", "too_small"), (-3, "too_small"), ("many", "not_integer")])
def test_connection_limit_is_a_positive_whole_number(value: object, problem: str) -> None:
    with pytest.raises(FieldError) as info:
        Partner.parse(domain="example.com", connection_limit=value)
    assert (info.value.field, info.value.problem) == ("connection_limit", problem)
    assert Partner.parse(domain="example.com", connection_limit="12").connection_limit == 12
    assert Partner.parse(domain="example.com", connection_limit="default").connection_limit is None


@pytest.mark.parametrize(("value", "problem"), [("two\nlines", "control_character"), ("x" * 1025, "too_long")])
def test_description_is_one_line_of_bounded_length(value: str, problem: str) -> None:
    with pytest.raises(FieldError) as info:
        Partner("example.com", description=value)
    assert (info.value.field, info.value.problem) == ("description", problem)


def test_unknown_field_is_refused() -> None:
    with pytest.raises(FieldError) as info:
        Partner.parse(domain="example.com", colour="blue")
    assert info.value.problem == "unknown_field"
    assert "description" in info.value.allowed


@pytest.mark.parametrize("settings", ALL_SETTINGS, ids=str)
def test_partner_settings_are_judged_by_the_shared_matrix(settings: Settings, matrix_file: dict[str, Any]) -> None:
    row = next(r for r in matrix_file["rows"] if {k: r[k] for k in ("tls", "sasl", "dialback")} == settings.as_dict())
    if row["valid"]:
        p = Partner("example.com", tls=settings.tls, sasl=settings.sasl, dialback=settings.dialback)
        assert [n.value for n in p.evaluation.notes] == row["notes"]
    else:
        with pytest.raises(InvalidSettings) as info:
            Partner("example.com", tls=settings.tls, sasl=settings.sasl, dialback=settings.dialback)
        assert info.value.field == "settings"
        errors = [n for n in row["notes"] if Note(n).is_error]
        assert [n.value for n in info.value.errors] == errors
        assert errors


def test_changed_touches_only_named_fields_and_validates_the_result() -> None:
    p = Partner("example.com", additional_domains=("b.example",), description="hello", connection_limit=4)
    q = p.changed(tls="optional")
    assert q.tls is Tls.OPTIONAL
    assert {k: v for k, v in q.as_dict().items() if k != "tls"} == {k: v for k, v in p.as_dict().items() if k != "tls"}
    assert Partner.parse(**q.as_dict()) == q
    no_dialback = p.changed(dialback=False)
    with pytest.raises(InvalidSettings):
        no_dialback.changed(sasl="not_supported")


def test_gateway_defaults() -> None:
    g = GatewaySettings()
    assert g.as_dict() == {
        "connection_limit": 1000,
        "partner_connection_limit": 20,
        "keepalive_interval": 300,
        "stream_establishment_timeout": 60,
        "stream_inactivity_timeout": 600,
        "subscription_refresh_interval": 28800,
        "log_message_bodies": False,
        "max_stanza_size": 262144,
        "unlisted_domains": "refuse",
        "dialback_passphrase_set": False,
    }


def test_gateway_passphrase_is_hidden_unless_asked() -> None:
    g = GatewaySettings(dialback_passphrase="s3cret-s3cret-s3cret")
    assert "s3cret" not in repr(g)
    assert "dialback_passphrase" not in g.as_dict()
    assert g.as_dict(show_secrets=True)["dialback_passphrase"] == "s3cret-s3cret-s3cret"
    with pytest.raises(FieldError) as info:
        g.changed(dialback_passphrase="tiny-pass")
    assert info.value.field == "dialback_passphrase"
    assert "tiny-pass" not in str(info.value)  # not even a refused passphrase is echoed


def test_unlisted_domains_is_refuse_or_a_valid_triple() -> None:
    g = GatewaySettings.parse(unlisted_domains="optional/optional/true")
    assert g.unlisted_domains == Settings.parse("optional", "optional", True)
    assert g.changed(unlisted_domains="REFUSE").unlisted_domains is None
    with pytest.raises(InvalidSettings) as info:
        g.changed(unlisted_domains="required/not_supported/false")
    assert info.value.field == "unlisted_domains"
    assert info.value.errors == (Note.SASL_OR_DIALBACK_MUST_BE_ENABLED,)
    with pytest.raises(FieldError) as bad:
        g.changed(unlisted_domains="accept")
    assert bad.value.field == "unlisted_domains"


@pytest.mark.parametrize("field", ["connection_limit", "keepalive_interval", "max_stanza_size"])
def test_gateway_numbers_must_be_positive(field: str) -> None:
    with pytest.raises(FieldError) as info:
        GatewaySettings.parse(**{field: "0"})
    assert info.value.field == field


@pytest.mark.parametrize(
    ("passphrase", "problem"),
    [("has a space in the middle", "space"), ("tab\tinside-a-long-passphrase", "space"),
     ("bell\x07inside-a-long-passphrase", "control_character"), ("short", "too_short")],
)
def test_bad_passphrases_say_what_is_wrong(passphrase: str, problem: str) -> None:
    with pytest.raises(FieldError) as info:
        GatewaySettings(dialback_passphrase=passphrase)
    assert (info.value.field, info.value.problem) == ("dialback_passphrase", problem)
