"""The ``fedgate`` command as a user meets it: output in three languages, JSON for scripts, exit codes 0/1/2,
one-line errors naming the field and the allowed values, and real processes writing at the same time."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from fedgate import policy
from fedgate.cli import cli
from fedgate.cli.types import FieldType
from fedgate.explain import exclusion_text, note_text, outcome_text
from fedgate.i18n import t
from fedgate.policy import Note, Settings

INERT = Note.DIALBACK_INERT


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "fedgate.sqlite3"


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    environment = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", "FEDGATE_DB": "", **(env or {})}
    return CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)


def fedgate(db: Path, *args: str, lang: str = "en") -> Result:
    return run("--db", str(db), "--lang", lang, *args)


def assert_one_line_error(result: Result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --- policy ---------------------------------------------------------------------------------------------------


def test_matrix_json_rows_equal_the_shared_file(matrix_file: dict[str, Any]) -> None:
    result = run("policy", "matrix", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["rows"] == matrix_file["rows"]


def test_matrix_csv(matrix_file: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(run("policy", "matrix", "--format", "csv").stdout)))
    assert len(rows) == 18
    assert [r["expected_methods"].split() for r in rows] == [r["expected_methods"] for r in matrix_file["rows"]]
    assert [r["valid"] for r in rows] == [str(r["valid"]).lower() for r in matrix_file["rows"]]


@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
def test_matrix_table_explains_notes_in_the_chosen_language(lang: str) -> None:
    out = run("--lang", lang, "policy", "matrix").stdout
    for note in Note:
        assert note_text(note, lang) in out
    assert t("setting.dialback", lang) in out
    assert out.count("sasl_tls tls_dialback tcp_dialback") == 2  # optional TLS with SASL allowed, dialback on


def test_check_valid_with_warning_in_japanese() -> None:
    result = run("--lang", "ja", "policy", "check", "--tls", "required", "--sasl", "required", "--dialback")
    assert result.exit_code == 0
    assert "有効です" in result.stdout
    assert "警告：" + note_text(INERT, "ja") in result.stdout


def test_check_invalid_exits_1_and_marks_errors_and_warnings() -> None:
    result = run("policy", "check", "--tls", "not_supported", "--sasl", "optional", "--no-dialback")
    assert result.exit_code == 1
    assert "error: " + note_text(Note.NO_USABLE_METHOD, "en") in result.stdout
    assert "warning: " + note_text(Note.SASL_NEEDS_TLS, "en") in result.stdout


def test_check_json() -> None:
    result = run("policy", "check", "--tls", "optional", "--sasl", "not_supported", "--dialback", "--format", "json")
    data = json.loads(result.stdout)
    assert data["expected_methods"] == ["tls_dialback", "tcp_dialback"]
    assert data["valid"] is True
    result = run("policy", "check", "--tls", "required", "--sasl", "not_supported", "--no-dialback", "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["explanations"] == [
        {
            "note": "sasl_or_dialback_must_be_enabled",
            "kind": "error",
            "text": note_text(Note.SASL_OR_DIALBACK_MUST_BE_ENABLED, "en"),
        }
    ]


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--tls", "maybe", "--sasl", "required", "--dialback"], ["tls", "maybe", "required, optional, not_supported"]),
        (["--tls", "required", "--sasl", "never", "--dialback"], ["sasl", "never", "not_supported"]),
        (["--tls", "required", "--sasl", "required"], ["--dialback", "--no-dialback"]),
        (["--tls", "required", "--sasl", "required", "--dialback", "--format", "xml"], ["format", "xml", "json"]),
    ],
)
def test_check_usage_errors_exit_2_with_one_line(args: list[str], needles: list[str]) -> None:
    assert_one_line_error(run("policy", "check", *args), 2, *needles)


@pytest.mark.parametrize(
    ("args", "missing", "allowed"),
    [
        (["--tls", "optional", "--dialback"], "--sasl", "required, optional, not_supported"),
        (["--sasl", "optional", "--no-dialback"], "--tls", "required, optional, not_supported"),
        (["--tls", "optional", "--sasl", "optional"], "--dialback", "--no-dialback"),
    ],
)
@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
def test_check_missing_option_is_a_usage_error_naming_it(
    args: list[str], missing: str, allowed: str, lang: str
) -> None:
    line = assert_one_line_error(run("--lang", lang, "policy", "check", *args), 2, missing, allowed)
    assert line.startswith(t("cli.line.error", lang, message=""))
    assert "Traceback" not in line


def _field_params(command: click.Command) -> Iterator[tuple[str, click.Parameter]]:
    for param in command.params:
        yield command.name or "", param
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _field_params(sub)


def test_every_field_option_can_say_what_it_allows() -> None:
    """What a missing value's message lists comes from the field's parser; no parser may crash producing it."""
    checked = 0
    for command, param in _field_params(cli):
        if isinstance(param.type, FieldType):
            allowed = param.type.allowed()
            assert allowed.strip() and not allowed.startswith("<"), (command, param.name, allowed)
            checked += 1
    assert checked > 20


def test_value_errors_in_each_language() -> None:
    args = ["policy", "check", "--tls", "maybe", "--sasl", "required", "--dialback"]
    assert_one_line_error(run("--lang", "ja", *args), 2, "エラー：", "「maybe」は指定できません")
    assert_one_line_error(run("--lang", "zh-TW", *args), 2, "錯誤：", "不接受「maybe」")
    # Without --lang the environment decides, as gettext would.
    assert_one_line_error(run(*args, env={"LANG": "ja_JP.UTF-8"}), 2, "エラー：")
    assert_one_line_error(run(*args, env={"LANG": "zh_TW.UTF-8"}), 2, "錯誤：")
    assert_one_line_error(run("--lang", "fr", *args), 2, "lang", "en, zh-TW, ja")


def test_negotiate_pair_in_words() -> None:
    result = run("policy", "negotiate", "--local", "required/required/true", "--remote", "optional/optional/true")
    assert result.exit_code == 0
    local, remote = Settings.parse_triple("required/required/true"), Settings.parse_triple("optional/optional/true")
    expected = policy.negotiate(local, remote)
    assert result.stdout.strip() == outcome_text(expected, "en")
    failed = run(
        "--lang", "zh-TW", "policy", "negotiate", "--local", "required/required/false", "--remote",
        "optional/not_supported/true",
    )
    assert failed.exit_code == 1
    assert failed.stdout.startswith("雙方沒有共同的驗證方式")


def test_negotiate_invalid_certificate_rules_out_sasl() -> None:
    args = ["policy", "negotiate", "--local", "required/required/false", "--remote", "required/required/false"]
    assert run(*args).exit_code == 0
    result = run(*args, "--initiator-cert-invalid", "--format", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["method"] is None


def test_negotiate_all_json_has_324_pairs() -> None:
    result = run("policy", "negotiate", "--all", "--format", "json")
    assert result.exit_code == 0
    pairs = json.loads(result.stdout)
    assert len(pairs) == 324
    outcomes = policy.all_pairs()
    assert [{k: v for k, v in p.items() if k != "explanation"} for p in pairs] == [o.as_dict() for o in outcomes]
    assert {"local", "remote", "method", "reason"} <= set(pairs[0])
    assert set(pairs[0]["local"]) == {"tls", "sasl", "dialback"}
    assert sum(p["method"] is None for p in pairs) > 0
    for pair in pairs:
        assert ("explanation" in pair) is (pair["method"] is None)


@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
def test_negotiate_all_json_explains_each_failed_pair_in_words(lang: str) -> None:
    pairs = json.loads(run("--lang", lang, "policy", "negotiate", "--all", "--format", "json").stdout)
    failed = [(p, o) for p, o in zip(pairs, policy.all_pairs(), strict=True) if p["method"] is None]
    assert failed
    for pair, outcome in failed:
        assert pair["reason"] == "no_common_method"  # the stable code stays
        assert pair["explanation"] == outcome_text(outcome, lang)
        for exclusion in outcome.excluded:  # which side's which setting ruled out which method
            assert exclusion_text(exclusion, lang) in pair["explanation"]
    single = run("--lang", lang, "policy", "negotiate", "--local", "required/required/false", "--remote",
                 "optional/not_supported/true", "--format", "json")
    assert single.exit_code == 1
    assert json.loads(single.stdout)["explanation"].startswith(t("negotiate.failed", lang))


@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
@pytest.mark.parametrize(
    ("args", "option", "needles"),
    [
        (["--local", "required/optional/maybe", "--remote", "required/required/true"], "--local",
         ["dialback", "maybe", "true, false"]),
        (["--local", "required/required/true", "--remote", "required/sometimes/true"], "--remote",
         ["sasl", "sometimes", "not_supported"]),
        (["--local", "required/optional", "--remote", "required/required/true"], "--local", ["TLS/SASL/DIALBACK"]),
    ],
)
def test_negotiate_bad_sides_name_the_option(lang: str, args: list[str], option: str, needles: list[str]) -> None:
    line = assert_one_line_error(run("--lang", lang, "policy", "negotiate", *args), 2, option, *needles)
    assert line.startswith(t("cli.line.error", lang, message=option))


@pytest.mark.parametrize(
    ("value", "problem"), [("::1", "ipv6_needs_brackets"), ("h:1:2", "too_many_colons")]
)
def test_proxy_fqdn_with_colons_says_what_is_wrong(db: Path, value: str, problem: str) -> None:
    for lang in ("en", "zh-TW", "ja"):
        line = assert_one_line_error(fedgate(db, "partner", "new", "a.example", "--proxy-fqdn", value, lang=lang), 2,
                                     "proxy_fqdn", t(f"problem.{problem}", lang))
        assert t("problem.port", lang) not in line
    assert fedgate(db, "partner", "new", "a.example", "--proxy-fqdn", "[::1]:5269").exit_code == 0


def test_negotiate_usage_errors() -> None:
    assert_one_line_error(run("policy", "negotiate", "--local", "required/required/true"), 2, "--remote")
    assert_one_line_error(run("policy", "negotiate", "--all", "--local", "required/required/true"), 2, "--all")
    assert_one_line_error(
        run("policy", "negotiate", "--local", "required/sometimes/true", "--remote", "required/required/true"),
        2,
        "sasl",
        "sometimes",
    )


def _click_usage_cases(lang: str, tmp: Path) -> list[tuple[list[str], str]]:
    """Arguments that make click itself refuse the command line, and the line the catalogue gives for each."""
    sep = t("cli.list_separator", lang)
    partner_new = [o for p in cli.commands["partner"].commands["new"].params  # type: ignore[attr-defined]
                   if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)] + ["-h", "--help"]

    def value(field: str, given: str, problem: str, allowed: str) -> str:
        return t("cli.error.value_problem", lang, field=field, value=given, problem=t(problem, lang), allowed=allowed)

    return [
        (["partner", "new", "y.example", "--tls"],
         t("cli.error.requires_value", lang, option="--tls", allowed="required, optional, not_supported")),
        (["partner", "new", "y.example", "--dialback=yes"],
         t("cli.error.takes_no_value", lang, option="--dialback", allowed=sep.join(["--dialback", "--no-dialback"]))),
        (["partner", "bogus"], t("cli.error.no_such_command", lang, command="bogus",
                                 allowed=sep.join(["get", "new", "remove", "set"]))),
        (["bogus"], t("cli.error.no_such_command", lang, command="bogus", allowed=sep.join(sorted(cli.commands)))),
        (["partner", "new", "a.example", "extra"],
         t("cli.error.extra_arguments", lang, arguments="extra", usage="fedgate partner new [OPTIONS] DOMAIN")),
        (["partner", "new", "a.example", "--colour"],
         t("cli.error.no_such_option", lang, option="--colour", allowed=sep.join(partner_new))),
        (["partner", "new"], t("cli.error.missing", lang, field="DOMAIN", allowed=t("allowed.domain", lang))),
        (["--db", str(tmp), "partner", "get"],
         value("--db", str(tmp), "problem.is_directory", t("allowed.path.file", lang))),
        (["probe", "x.example", "--cafile", str(tmp / "none.pem")],
         value("--cafile", str(tmp / "none.pem"), "problem.not_found", t("allowed.path.file_existing", lang))),
        (["probe", "x.example", "--port", "0"],
         value("--port", "0", "problem.out_of_range", t("allowed.number_range", lang, low=1, high=65535))),
        (["probe", "x.example", "--port", "http"],
         value("--port", "http", "problem.not_number", t("allowed.number_range", lang, low=1, high=65535))),
        (["status", "--format", "xml"], value("--format", "xml", "problem.not_allowed", "table, json")),
        (["probe", "x.example", "--port"],
         t("cli.error.requires_value", lang, option="--port", allowed=t("allowed.number_range", lang, low=1,
                                                                        high=65535))),
    ]


@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
def test_click_usage_errors_come_from_the_catalogue(tmp_path: Path, lang: str) -> None:
    for args, message in _click_usage_cases(lang, tmp_path):
        for result in (run("--lang", lang, *args), run(*args, env={"LANG": {"en": "C.UTF-8", "zh-TW": "zh_TW.UTF-8",
                                                                            "ja": "ja_JP.UTF-8"}[lang]})):
            line = assert_one_line_error(result, 2)
            assert line == t("cli.line.error", lang, message=message), args


def test_help_still_shows_what_click_types_allow() -> None:
    assert "1<=x<=65535" in run("probe", "--help").stdout
    assert "[table|json]" in run("status", "--help").stdout


def test_language_option_decides_errors_found_before_it(tmp_path: Path) -> None:
    result = run("--db", str(tmp_path), "--lang", "ja", "partner", "get")
    assert assert_one_line_error(result, 2, "--db").startswith("エラー：")


# --- partners ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "prefix"), [("en", "warning: "), ("zh-TW", "警告："), ("ja", "警告：")])
def test_new_partner_with_defaults_shows_the_inert_dialback_warning(db: Path, lang: str, prefix: str) -> None:
    result = fedgate(db, "partner", "new", "example.com", lang=lang)
    assert result.exit_code == 0
    assert result.stdout.strip() == t("cli.partner.added", lang, domain="example.com")
    assert result.stderr.strip() == prefix + note_text(INERT, lang)


def test_new_partner_all_options(db: Path) -> None:
    result = fedgate(
        db, "partner", "new", "Bücher.Example", "--tls", "optional", "--sasl", "optional", "--no-dialback",
        "--partner-type", "federated", "--proxy-fqdn", "127.0.0.9:5270", "--additional-domain", "chat.example",
        "--additional-domain", "muc.example", "--no-keepalive", "--connection-limit", "5", "--description", "books",
        "--format", "json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "domain": "xn--bcher-kva.example",
        "additional_domains": ["chat.example", "muc.example"],
        "tls": "optional",
        "sasl": "optional",
        "dialback": False,
        "partner_type": "federated",
        "proxy_fqdn": "127.0.0.9:5270",
        "enable_keepalive": False,
        "connection_limit": 5,
        "description": "books",
    }
    assert "warning: " + note_text(Note.SASL_NEEDS_TLS, "en") in result.stderr
    shown = json.loads(fedgate(db, "partner", "get", "bücher.example", "--format", "json").stdout)
    assert shown == [json.loads(result.stdout)]


def test_invalid_settings_are_refused_with_every_reason_and_nothing_written(db: Path) -> None:
    assert fedgate(db, "partner", "new", "a.example").exit_code == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = fedgate(db, "partner", "new", "b.example", "--tls", "not_supported", "--sasl", "optional", "--no-dialback")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: settings: not_supported/optional/false refused")
    assert "Allowed: " in lines[0]
    assert lines[1:] == ["  error: " + note_text(Note.NO_USABLE_METHOD, "en")]
    result = fedgate(db, "partner", "set", "a.example", "--sasl", "not_supported", "--no-dialback", lang="ja")
    assert result.exit_code == 1
    assert note_text(Note.SASL_OR_DIALBACK_MUST_BE_ENABLED, "ja") in result.stderr
    assert fedgate(db, "partner", "new", "a.example").exit_code == 1  # duplicate
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    assert json.loads(fedgate(db, "partner", "get", "--format", "json").stdout)[0]["sasl"] == "required"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["partner", "new", "exa mple.com"], ["domain", "exa mple.com", "space", "253"]),
        (["partner", "new", "user@example.com"], ["domain", "'@'"]),
        (["partner", "new", "example.com:5269"], ["domain", "port"]),
        (["partner", "new", "a.example", "--partner-type", "friend"], ["partner_type", "federated, public_verified"]),
        (["partner", "new", "a.example", "--proxy-fqdn", "h.example:99999"], ["proxy_fqdn", "1-65535"]),
        (["partner", "new", "a.example", "--connection-limit", "0"], ["connection_limit", "1 or more"]),
        (["partner", "new", "a.example", "--additional-domain", "x/y"], ["additional_domains", "'/'"]),
        (["partner", "new", "a.example", "--dialback", "--colour"], ["--colour"]),
        (["partner", "new"], ["DOMAIN"]),
        (["gateway", "set", "--keepalive-interval", "soon"], ["keepalive_interval", "whole number"]),
        (["gateway", "set", "--unlisted-domains", "accept"], ["unlisted_domains", "refuse", "optional/optional/true"]),
        (["gateway", "set"], ["--help"]),
    ],
)
def test_bad_values_are_usage_errors_naming_the_field(db: Path, args: list[str], needles: list[str]) -> None:
    line = assert_one_line_error(fedgate(db, *args), 2, *needles)
    assert line.startswith("error: ")


def test_domains_follow_idna_2008(db: Path) -> None:
    result = fedgate(db, "partner", "new", "faß.example", "--format", "json")
    assert json.loads(result.stdout)["domain"] == "xn--fa-hia.example"
    assert "xn--fa-hia.example (faß.example)" in fedgate(db, "partner", "get").stdout
    assert fedgate(db, "partner", "new", "fass.example").exit_code == 0  # another domain, not a duplicate
    for bad in ("☃.example", "xn--zz.example"):
        assert_one_line_error(fedgate(db, "partner", "new", bad), 2, "domain", bad, "IDNA 2008")
        assert_one_line_error(fedgate(db, "partner", "new", "a.example", "--additional-domain", bad), 2,
                              "additional_domains", bad)
    assert [p["domain"] for p in json.loads(fedgate(db, "partner", "get", "--format", "json").stdout)] == [
        "fass.example", "xn--fa-hia.example"]


def test_refusals_exit_1(db: Path) -> None:
    fedgate(db, "partner", "new", "a.example", "--additional-domain", "alias.example")
    assert_one_line_error(fedgate(db, "partner", "new", "alias.example"), 1, "domain", "alias.example", "a.example")
    assert_one_line_error(fedgate(db, "partner", "remove", "b.example"), 1, "domain", "b.example")
    assert_one_line_error(fedgate(db, "partner", "set", "b.example", "--tls", "optional"), 1, "b.example")
    assert_one_line_error(fedgate(db, "partner", "get", "b.example"), 1, "b.example")
    in_japanese = fedgate(db, "partner", "remove", "b.example", lang="ja")
    assert_one_line_error(in_japanese, 1, "b.example というパートナーはありません")


def test_set_changes_only_the_named_fields(db: Path) -> None:
    fedgate(db, "partner", "new", "a.example", "--tls", "optional", "--description", "keep me", "--connection-limit",
            "9", "--additional-domain", "x.example")
    before = json.loads(fedgate(db, "partner", "get", "a.example", "--format", "json").stdout)[0]
    result = fedgate(db, "partner", "set", "a.example", "--no-keepalive", "--partner-type", "federated")
    assert result.exit_code == 0
    assert result.stdout.strip() == "Partner a.example updated."
    after = json.loads(fedgate(db, "partner", "get", "a.example", "--format", "json").stdout)[0]
    assert after == {**before, "enable_keepalive": False, "partner_type": "federated"}
    # Clearing values that have a "none" form.
    fedgate(db, "partner", "set", "a.example", "--connection-limit", "default", "--proxy-fqdn", "h.example")
    after = json.loads(fedgate(db, "partner", "get", "a.example", "--format", "json").stdout)[0]
    assert (after["connection_limit"], after["proxy_fqdn"], after["description"]) == (None, "h.example", "keep me")


def test_set_adds_and_removes_additional_domains(db: Path) -> None:
    fedgate(db, "partner", "new", "a.example", "--additional-domain", "x.example", "--additional-domain", "y.example")
    result = fedgate(db, "partner", "set", "a.example", "--add-additional-domain", "z.example",
                     "--remove-additional-domain", "x.example", "--format", "json")
    assert json.loads(result.stdout)["additional_domains"] == ["y.example", "z.example"]
    assert_one_line_error(
        fedgate(db, "partner", "set", "a.example", "--remove-additional-domain", "q.example"),
        1,
        "additional_domains",
        "y.example, z.example",
    )
    assert_one_line_error(fedgate(db, "partner", "set", "a.example"), 2, "--help")


def test_get_with_wildcards_and_tables(db: Path) -> None:
    for name in ("a.example.com", "b.example.com", "c.example.net"):
        fedgate(db, "partner", "new", name)
    listed = json.loads(fedgate(db, "partner", "get", "*.example.com", "--format", "json").stdout)
    assert [p["domain"] for p in listed] == ["a.example.com", "b.example.com"]
    assert json.loads(fedgate(db, "partner", "get", "*.org", "--format", "json").stdout) == []
    assert fedgate(db, "partner", "get", "*.org").stdout.strip() == "No partners match."
    table = fedgate(db, "partner", "get", lang="zh-TW").stdout
    assert table.splitlines()[0].startswith("網域")
    assert "c.example.net" in table
    fedgate(db, "partner", "new", "bücher.example")
    listed = json.loads(fedgate(db, "partner", "get", "bü*", "--format", "json").stdout)
    assert [p["domain"] for p in listed] == ["xn--bcher-kva.example"]


def test_remove(db: Path) -> None:
    fedgate(db, "partner", "new", "a.example")
    result = fedgate(db, "partner", "remove", "A.EXAMPLE", lang="ja")
    assert (result.exit_code, result.stdout.strip()) == (0, "パートナー a.example を削除しました。")
    assert json.loads(fedgate(db, "partner", "get", "--format", "json").stdout) == []


def test_database_from_environment(db: Path) -> None:
    assert run("partner", "new", "a.example", env={"FEDGATE_DB": str(db)}).exit_code == 0
    assert db.exists()
    assert "a.example" in fedgate(db, "partner", "get").stdout


def _garbage(path: Path) -> Path:
    path.write_bytes(b"garbage\n" * 100)
    return path


def _foreign(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    return path


def _under_a_file(path: Path) -> Path:
    path.write_text("not a folder")
    return path / "fedgate.sqlite3"


@pytest.mark.parametrize(
    ("make", "problem"),
    [(_garbage, "not_a_database"), (_foreign, "foreign"), (_under_a_file, "no_directory")],
)
@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
@pytest.mark.parametrize("command", [["partner", "get"], ["partner", "new", "a.example"], ["gateway", "get"]])
def test_an_unusable_database_is_one_line_naming_db_and_left_as_it_is(
    tmp_path: Path, make: Any, problem: str, lang: str, command: list[str]
) -> None:
    path = make(tmp_path / "given.db")
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir() if p.is_file())
    line = assert_one_line_error(fedgate(path, *command, lang=lang), 2, "--db", str(path))
    assert line == t("cli.line.error", lang, message=t("cli.error.db", lang, path=path,
                                                         problem=t(f"db.problem.{problem}", lang)))
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir() if p.is_file()) == before


@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
def test_sqlites_in_memory_name_is_refused_and_makes_no_file(
    tmp_path: Path, lang: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once, this opened an in-memory database that never switched to WAL, and spun at 100 % CPU for ever,
    after creating a file named ":memory:"."""
    monkeypatch.chdir(tmp_path)
    line = assert_one_line_error(run("--db", ":memory:", "--lang", lang, "partner", "get"), 2, "--db", ":memory:")
    assert line == t("cli.line.error", lang, message=t("cli.error.db", lang, path=":memory:",
                                                         problem=t("db.problem.in_memory", lang)))
    assert list(tmp_path.iterdir()) == []


def test_a_database_path_nothing_can_be_made_in(tmp_path: Path) -> None:
    assert_one_line_error(run("--db", "/proc/nope/x.db", "partner", "get"), 2, "--db", "/proc/nope/x.db", "folder")
    assert_one_line_error(run("--db", "/proc/x.db", "partner", "get"), 2, "--db", "/proc/x.db", "cannot be opened")


# --- gateway ----------------------------------------------------------------------------------------------------


def test_gateway_get_hides_the_passphrase_unless_asked(db: Path) -> None:
    shown = json.loads(fedgate(db, "gateway", "get", "--format", "json").stdout)
    assert shown["dialback_passphrase_set"] is False
    assert "dialback_passphrase" not in shown
    secret = json.loads(fedgate(db, "gateway", "get", "--show-secrets", "--format", "json").stdout)
    passphrase = secret["dialback_passphrase"]
    assert len(passphrase) >= 32
    table = fedgate(db, "gateway", "get").stdout
    assert passphrase not in table
    assert "(set; shown with --show-secrets)" in table
    assert passphrase in fedgate(db, "gateway", "get", "--show-secrets").stdout
    fedgate(db, "gateway", "set", "--regenerate-dialback-passphrase")
    again = json.loads(fedgate(db, "gateway", "get", "--show-secrets", "--format", "json").stdout)
    assert again["dialback_passphrase"] != passphrase


def test_gateway_set_changes_only_named_fields_and_warns(db: Path) -> None:
    result = fedgate(db, "gateway", "set", "--partner-connection-limit", "7", "--unlisted-domains",
                     "optional/optional/true", "--log-message-bodies")
    assert result.exit_code == 0
    assert result.stdout.strip() == "Gateway settings updated."
    assert "warning: " + note_text(Note.SASL_NEEDS_TLS, "en") in result.stderr
    shown = json.loads(fedgate(db, "gateway", "get", "--format", "json").stdout)
    assert (shown["partner_connection_limit"], shown["unlisted_domains"], shown["log_message_bodies"]) == (
        7, "optional/optional/true", True)
    assert (shown["connection_limit"], shown["keepalive_interval"], shown["max_stanza_size"]) == (1000, 300, 262144)
    table = fedgate(db, "gateway", "get", lang="ja").stdout
    assert "パートナーごとの接続数上限" in table


@pytest.mark.parametrize("lang", ["en", "zh-TW", "ja"])
def test_gateway_refuses_a_partner_limit_above_the_total(db: Path, lang: str) -> None:
    fedgate(db, "gateway", "set", "--connection-limit", "100")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for args in (["--partner-connection-limit", "101"], ["--connection-limit", "19"],
                 ["--connection-limit", "50", "--partner-connection-limit", "60", "--keepalive-interval", "5"]):
        line = assert_one_line_error(fedgate(db, "gateway", "set", *args, lang=lang), 1,
                                     "partner_connection_limit", "connection_limit")
        assert line.startswith(t("cli.line.error", lang, message="partner_connection_limit"))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    shown = json.loads(fedgate(db, "gateway", "get", "--format", "json").stdout)
    assert (shown["connection_limit"], shown["partner_connection_limit"], shown["keepalive_interval"]) == (100, 20, 300)
    assert fedgate(db, "gateway", "set", "--partner-connection-limit", "100").exit_code == 0  # equal is fine
    both = fedgate(db, "gateway", "set", "--connection-limit", "500", "--partner-connection-limit", "300")
    assert both.exit_code == 0


def test_gateway_refuses_invalid_unlisted_settings(db: Path) -> None:
    fedgate(db, "gateway", "get")
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = fedgate(db, "gateway", "set", "--unlisted-domains", "optional/not_supported/false")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: unlisted_domains: optional/not_supported/false refused")
    assert note_text(Note.SASL_OR_DIALBACK_MUST_BE_ENABLED, "en") in result.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


# --- real processes ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_concurrent_cli_processes_lose_no_partner(db: Path) -> None:
    """Two streams of `python -m fedgate.cli partner new`, side by side, on one new database."""

    def add(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fedgate.cli", "--db", str(db), "--lang", "en", "partner", "new", name],
            capture_output=True, text=True, timeout=120, check=False,
        )

    names = [f"p{i}.example" for i in range(24)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(add, names))
    assert [r.returncode for r in results] == [0] * len(names), [r.stderr for r in results if r.returncode]
    assert all(r.stdout.strip() == f"Partner {n} added." for r, n in zip(results, names, strict=True))
    listed = json.loads(fedgate(db, "partner", "get", "--format", "json").stdout)
    assert sorted(p["domain"] for p in listed) == sorted(names)


@pytest.mark.slow
def test_concurrent_add_additional_domain_keeps_every_domain(db: Path) -> None:
    """Ten `partner set --add-additional-domain` processes started at once on one partner: all ten domains stay."""
    assert fedgate(db, "partner", "new", "x.example").exit_code == 0
    command = [sys.executable, "-m", "fedgate.cli", "--db", str(db), "--lang", "en", "partner", "set", "x.example"]
    processes = [
        subprocess.Popen([*command, "--add-additional-domain", f"d{i}.example"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for i in range(10)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * 10, [err for _, err in outputs]
    shown = json.loads(fedgate(db, "partner", "get", "x.example", "--format", "json").stdout)[0]
    assert sorted(shown["additional_domains"]) == sorted(f"d{i}.example" for i in range(10)), outputs
