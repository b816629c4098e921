"""The policy engine against the shared matrix file (18 rows) and an independent statement of the
pairwise rule (324 pairs)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from fedgate import policy
from fedgate.explain import outcome_text
from fedgate.policy import Method, Settings, negotiate


def test_matrix_rows_equal_the_shared_file_in_order(matrix_file: dict[str, Any]) -> None:
    ours = [e.as_row() for e in policy.matrix()]
    assert ours == matrix_file["rows"]


@pytest.mark.parametrize("index", range(18))
def test_each_row(matrix_file: dict[str, Any], index: int) -> None:
    row = matrix_file["rows"][index]
    ev = policy.evaluate(Settings.parse(row["tls"], row["sasl"], row["dialback"]))
    assert [m.value for m in ev.expected_methods] == row["expected_methods"]
    assert ev.valid is row["valid"]
    assert [n.value for n in ev.notes] == row["notes"]
    # Invalid rows carry an error note; valid rows never do.
    assert bool(ev.errors) is (not row["valid"])


def test_tls_required_never_allows_plain_tcp() -> None:
    # The seed's short table says otherwise for required/optional/on; the complete matrix wins.
    for s in policy.ALL_SETTINGS:
        if s.tls is policy.Tls.REQUIRED:
            assert Method.TCP_DIALBACK not in policy.expected_methods(s)


def _independent_rule(
    local: dict[str, Any], remote: dict[str, Any], cert_ok: bool, rows: list[dict[str, Any]]
) -> str | None:
    """Written from the issue's words, using the file's rows as each side's allowed set."""

    def allowed(side: dict[str, Any]) -> list[str]:
        for r in rows:
            if (r["tls"], r["sasl"], r["dialback"]) == (side["tls"], side["sasl"], side["dialback"]):
                return list(r["expected_methods"])
        raise AssertionError(side)

    a, b = allowed(local), allowed(remote)
    for m in ["sasl_tls", "tls_dialback", "tcp_dialback"]:
        if m in a and m in b and (m != "sasl_tls" or cert_ok):
            return m
    return None


@pytest.mark.parametrize("cert_ok", [True, False])
def test_all_324_pairs_follow_the_rule(matrix_file: dict[str, Any], cert_ok: bool) -> None:
    rows = matrix_file["rows"]
    count = 0
    for lr, rr in itertools.product(rows, rows):
        local = Settings.parse(lr["tls"], lr["sasl"], lr["dialback"])
        remote = Settings.parse(rr["tls"], rr["sasl"], rr["dialback"])
        out = negotiate(local, remote, initiator_certificate_valid=cert_ok)
        expected = _independent_rule(lr, rr, cert_ok, rows)
        assert (out.method.value if out.method else None) == expected, (lr, rr)
        count += 1
    assert count == 324


def test_failure_names_side_setting_and_method() -> None:
    out = negotiate(Settings.parse_triple("not_supported/not_supported/true"),
                    Settings.parse_triple("required/required/false"))
    assert out.method is None
    assert out.reason == "no_common_method"
    got = {(e.method.value, e.side, e.setting) for e in out.excluded}
    assert ("sasl_tls", "local", "tls") in got
    assert ("tcp_dialback", "remote", "tls") in got
    assert ("tcp_dialback", "remote", "dialback") in got
    text = outcome_text(out, "en")
    assert "our side has TLS set to not supported" in text
    assert "the partner has TLS set to required" in text


def test_invalid_initiator_certificate_falls_back_to_dialback() -> None:
    s = Settings.parse_triple("required/optional/true")
    assert negotiate(s, s).method is Method.SASL_TLS
    out = negotiate(s, s, initiator_certificate_valid=False)
    assert out.method is Method.TLS_DIALBACK
    assert [e.rule.value for e in out.excluded] == ["certificate_invalid"]


@pytest.mark.parametrize(
    ("field", "bad"), [("tls", "maybe"), ("sasl", "yes"), ("dialback", "perhaps")]
)
def test_bad_values_name_the_field_and_allowed_values(field: str, bad: str) -> None:
    kw = {"tls": "required", "sasl": "required", "dialback": "true", field: bad}
    with pytest.raises(policy.SettingError) as exc:
        Settings.parse(kw["tls"], kw["sasl"], kw["dialback"])
    assert exc.value.field == field
    assert field in str(exc.value)
    assert "," in str(exc.value)  # the allowed values are listed


@pytest.mark.parametrize("value", [None, 3, object(), ["required"]])
@pytest.mark.parametrize(
    ("parse", "field"),
    [(policy.parse_tls, "tls"), (policy.parse_sasl, "sasl"), (lambda v: policy.parse_bool("dialback", v), "dialback")],
)
def test_values_that_are_not_text_are_refused_naming_the_field(parse: Any, field: str, value: object) -> None:
    with pytest.raises(policy.SettingError) as exc:
        parse(value)
    assert exc.value.field == field
    assert len(exc.value.allowed) >= 2


@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
def test_outcome_text_is_punctuated_as_sentences(lang: str) -> None:
    for out in [*policy.all_pairs(), *policy.all_pairs(initiator_certificate_valid=False)]:
        text = outcome_text(out, lang)
        assert not any(bad in text for bad in (".;", ". ;", "。；", "。;", "..", "。。")), text
        assert text.endswith("." if lang == "en" else "。"), text


# Why a side's settings rule a method out, written from the README's words rather than from the engine: each
# method with the settings that stop it and the code the engine must give for that.
_RULED_OUT_BY: dict[str, list[tuple[str, Any]]] = {
    "sasl_tls": [
        ("tls_not_supported", lambda s: s["tls"] == "not_supported"),  # SASL EXTERNAL needs TLS ...
        ("sasl_not_supported", lambda s: s["sasl"] == "not_supported"),  # ... and SASL
    ],
    "tls_dialback": [
        ("tls_not_supported", lambda s: s["tls"] == "not_supported"),
        ("dialback_off", lambda s: not s["dialback"]),
        ("tls_and_sasl_required", lambda s: s["tls"] == "required" and s["sasl"] == "required"),  # dialback inert
    ],
    "tcp_dialback": [
        ("tls_required", lambda s: s["tls"] == "required"),  # TLS required never allows plain TCP
        ("dialback_off", lambda s: not s["dialback"]),
    ],
}
_SETTING_OF = {"tls_not_supported": "tls", "sasl_not_supported": "sasl", "dialback_off": "dialback",
               "tls_required": "tls", "tls_and_sasl_required": "sasl", "certificate_invalid": "certificate"}


@pytest.mark.parametrize("cert_ok", [True, False])
def test_all_324_pairs_give_the_reasons_the_rule_gives(matrix_file: dict[str, Any], cert_ok: bool) -> None:
    rows = matrix_file["rows"]
    order = ["sasl_tls", "tls_dialback", "tcp_dialback"]
    for lr, rr in itertools.product(rows, rows):
        out = negotiate(Settings.parse(lr["tls"], lr["sasl"], lr["dialback"]),
                        Settings.parse(rr["tls"], rr["sasl"], rr["dialback"]), initiator_certificate_valid=cert_ok)
        chosen = out.method.value if out.method else None
        passed_over = order[: order.index(chosen)] if chosen else order
        expected = []
        for method in passed_over:
            for side, row in (("local", lr), ("remote", rr)):
                rules = [code for code, applies in _RULED_OUT_BY[method] if applies(row)]
                # The rule and the shared matrix agree on what one side allows.
                assert bool(rules) is (method not in row["expected_methods"]), (method, row)
                expected += [{"method": method, "side": side, "setting": _SETTING_OF[r], "rule": r} for r in rules]
            if method == "sasl_tls" and not cert_ok:
                expected.append({"method": method, "side": "local", "setting": "certificate",
                                 "rule": "certificate_invalid"})
        assert [e.as_dict() for e in out.excluded] == expected, (lr, rr, cert_ok)
        assert out.reason == (None if chosen else "no_common_method")
