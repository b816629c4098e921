"""``fedgate demo``: two gateways on loopback, each method end to end, a refused combination; and the minimal
XEP-0114 component client it uses."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fedgate.cli import cli
from fedgate.component_client import ComponentClient, ComponentError
from fedgate.i18n import t
from fedgate.server import Gateway, GatewayConfig, LocalDomain
from fedgate.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> Result:
    env = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", "FEDGATE_DB": ""}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_demo_json_every_method_and_the_refusal() -> None:
    started = time.monotonic()
    result = run("demo", "--json")
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, (result.stdout, result.stderr)
    report = json.loads(result.stdout)
    rows = report["rows"]
    assert [r["method"] for r in rows] == ["sasl_tls", "tls_dialback", "tcp_dialback"]
    for row in rows:
        assert set(row) >= {"method", "negotiated", "tls_version", "round_trip_ms", "ok", "detail"}
        assert row["ok"] is True, row
        assert row["negotiated"] == row["method"]
        assert row["round_trip_ms"] > 0
        assert row["tls_version"] == (None if row["method"] == "tcp_dialback" else "TLSv1.3")
    refused = report["refused"]
    assert refused["settings"] == "not_supported/required/false"
    assert refused["refused"] is True
    assert refused["errors"] == ["no_usable_method"]
    assert refused["explanation"]
    assert elapsed < 15
    assert result.stderr == ""


def test_demo_text_in_japanese() -> None:
    result = run("--lang", "ja", "demo")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    out = result.stdout
    for key in ("demo.col.method", "demo.col.negotiated", "demo.col.round_trip", "demo.summary_ok"):
        assert t(key, "ja") in out
    assert out.count(t("demo.result.ok", "ja")) >= 3
    # the refused combination is the table's last row, its reasons the last note under the table
    last_row = next(line for line in reversed(out.splitlines()) if "not_supported/required/false" in line)
    assert t("demo.result.refused", "ja", reason="[1]") in last_row
    assert "[1] " + t("demo.refused_by_store", "ja", field="settings") in out


def test_scripts_demo_runs_fedgate_demo() -> None:
    assert "exec fedgate demo" in (ROOT / "scripts" / "demo").read_text()


def test_component_client_handshake_and_refusal(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "s.sqlite3")
        gateway = Gateway(
            GatewayConfig(domains={"c.test": LocalDomain("c.test", None, "right")}, s2s_listen=[],
                          component_listen=("127.0.0.1", 0)),
            store,
        )
        await gateway.start()
        port = gateway.bound_ports()[0][1]
        try:
            good = ComponentClient("c.test", "right", "127.0.0.1", port)
            await good.connect()
            # A message to ourselves goes through the gateway's router and back.
            good.send_message("a@c.test", "b@c.test", "hello", id="m1")
            got = await good.next_message(3)
            assert got.get("id") == "m1" and got.get("from") == "a@c.test"
            await good.close()
            bad = ComponentClient("c.test", "wrong", "127.0.0.1", port)
            with pytest.raises(ComponentError, match="not-authorized"):
                await bad.connect()
            await bad.close()
        finally:
            await gateway.stop()
            store.close()

    asyncio.run(main())


def test_a_failing_method_is_reported_with_its_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """If the far side's settings leave no common method, the row fails, says why, and the exit code is 1."""
    from fedgate import demo as demo_mod
    from fedgate.policy import Settings

    original = demo_mod._Side.set_partner

    def skewed(self: demo_mod._Side, domain: str, settings: Settings) -> None:
        if self.domain == demo_mod.DOMAIN_B and str(settings) == "required/required/false":
            settings = Settings.parse_triple("not_supported/not_supported/true")
        original(self, domain, settings)

    monkeypatch.setattr(demo_mod._Side, "set_partner", skewed)
    result = run("demo", "--json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)["rows"]
    failed = rows[0]
    assert failed["method"] == "sasl_tls" and failed["ok"] is False and failed["round_trip_ms"] is None
    assert failed["detail"]
    assert [r["ok"] for r in rows[1:]] == [True, True]
    text = run("demo")
    assert text.exit_code == 1
    assert t("demo.result.failed", "en", reason="[1]") in text.stdout
    assert "[1] " + failed["detail"] in text.stdout
    assert t("demo.summary_failed", "en") in text.stdout
