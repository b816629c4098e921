"""``fedgate init``: a config ``fedgate.config.load`` accepts; with --dev a test CA and certificates that a
gateway started from that config really presents."""

from __future__ import annotations

import asyncio
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from fedgate import config
from fedgate.cli import cli
from fedgate.i18n import t
from fedgate.probe import probe
from fedgate.server import Gateway
from fedgate.store.sqlite import SqliteStore


def run(*args: str) -> Result:
    env = {"LC_ALL": "", "LC_MESSAGES": "", "LANG": "C.UTF-8", "FEDGATE_DB": ""}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_dev_writes_a_loadable_config_and_private_keys(tmp_path: Path) -> None:
    result = run("init", "--dev", "--dir", str(tmp_path))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    cfg = config.load(tmp_path / "fedgate.toml")
    assert list(cfg.gateway.domains) == ["gw.localhost"]
    domain = cfg.gateway.domains["gw.localhost"]
    assert domain.credentials is not None and domain.component_secret
    certs = tmp_path / "certs"
    for name in ("ca.crt", "ca.key", "gw.localhost.crt", "gw.localhost.key", "gw.localhost-chain.pem"):
        assert (certs / name).is_file(), name
    assert mode(certs / "ca.key") == 0o600
    assert mode(certs / "gw.localhost.key") == 0o600
    assert mode(tmp_path / "fedgate.toml") == 0o600  # it holds component secrets
    assert cfg.gateway.trust.use_system is False
    assert cfg.gateway.trust.cafiles == ((certs / "ca.crt").resolve(),)
    assert cfg.gateway.s2s_listen == [("127.0.0.1", 5269)]
    assert cfg.admin_listen == ("127.0.0.1", 5380)
    text = (tmp_path / "fedgate.toml").read_text()
    assert text.count("\n#") >= 2  # commented
    assert t("init.wrote", "en", path=str(tmp_path / "fedgate.toml")) in result.stdout


def test_init_several_domains(tmp_path: Path) -> None:
    result = run("init", "--dev", "--dir", str(tmp_path), "--domain", "a.localhost", "--domain", "b.localhost")
    assert result.exit_code == 0, result.stderr
    cfg = config.load(tmp_path / "fedgate.toml")
    assert sorted(cfg.gateway.domains) == ["a.localhost", "b.localhost"]
    secrets = {d.component_secret for d in cfg.gateway.domains.values()}
    assert len(secrets) == 2


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    assert run("init", "--dir", str(tmp_path)).exit_code == 0
    path = tmp_path / "fedgate.toml"
    before = path.read_text()
    result = run("init", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert str(path) in result.stderr and "--force" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert path.read_text() == before
    # --dev would also write certificates: still refused as a whole, nothing new written.
    result = run("init", "--dev", "--dir", str(tmp_path))
    assert result.exit_code == 1 and not (tmp_path / "certs").exists()
    assert run("init", "--dir", str(tmp_path), "--force").exit_code == 0
    assert path.read_text() != before  # new component secret


def test_init_without_dev_loads_with_system_trust(tmp_path: Path) -> None:
    assert run("--lang", "zh-TW", "init", "--dir", str(tmp_path), "--domain", "xmpp.example.org").exit_code == 0
    cfg = config.load(tmp_path / "fedgate.toml")
    assert list(cfg.gateway.domains) == ["xmpp.example.org"]
    assert cfg.gateway.domains["xmpp.example.org"].credentials is None
    assert cfg.gateway.trust.use_system is True


def test_init_dev_gateway_presents_a_valid_certificate(tmp_path: Path) -> None:
    assert run("init", "--dev", "--dir", str(tmp_path)).exit_code == 0
    cfg = config.load(tmp_path / "fedgate.toml")
    cfg.gateway.s2s_listen = [("127.0.0.1", 0)]
    cfg.gateway.component_listen = None
    store = SqliteStore(cfg.database)
    store.update_gateway(unlisted_domains="optional/optional/true")

    async def main() -> None:
        gateway = Gateway(cfg.gateway, store)
        await gateway.start()
        try:
            port = gateway.bound_ports()[0][1]
            report = await probe("gw.localhost", connect=f"127.0.0.1:{port}", cafiles=list(cfg.gateway.trust.cafiles),
                                 use_system_trust=False, timeout=5)
        finally:
            await gateway.stop()
        assert report.certificate is not None
        assert report.certificate["chain_valid"] and report.certificate["matches_domain"]
        assert report.starttls == {"offered": True, "required": False}

    try:
        asyncio.run(main())
    finally:
        store.close()


def test_probe_with_config_presents_our_certificate(tmp_path: Path) -> None:
    """`fedgate probe --config`: --from's certificate and the config's trust anchors; EXTERNAL becomes visible."""
    assert run("init", "--dev", "--dir", str(tmp_path)).exit_code == 0
    cfg = config.load(tmp_path / "fedgate.toml")
    cfg.gateway.s2s_listen = [("127.0.0.1", 0)]
    cfg.gateway.component_listen = None
    store = SqliteStore(cfg.database)
    store.update_gateway(unlisted_domains="optional/optional/true")

    async def main() -> tuple[dict[str, Any], dict[str, Any]]:
        gateway = Gateway(cfg.gateway, store)
        await gateway.start()
        try:
            port = gateway.bound_ports()[0][1]
            outs = []
            for extra in ([], ["--config", str(tmp_path / "fedgate.toml")]):
                args = ["probe", "gw.localhost", "--from", "gw.localhost", "--connect", f"127.0.0.1:{port}",
                        "--cafile", str(cfg.gateway.trust.cafiles[0]), "--format", "json", *extra]
                result = await asyncio.to_thread(run, *args)
                outs.append(json.loads(result.output))
            return outs[0], outs[1]
        finally:
            await gateway.stop()

    try:
        without, with_config = asyncio.run(main())
    finally:
        store.close()
    assert without["sasl_mechanisms"] == [] and without["settings"]["sasl_observed"] is False
    assert with_config["sasl_mechanisms"] == ["EXTERNAL"] and with_config["settings"]["sasl_observed"] is True


def test_init_header_names_the_database_serve_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command the header suggests works from any directory: its --db is the file `fedgate serve` opens,
    so a partner added with it is the partner the gateway sees."""
    monkeypatch.chdir(tmp_path)
    assert run("init", "--dev", "--dir", "conf").exit_code == 0
    text = (tmp_path / "conf" / "fedgate.toml").read_text()
    match = re.search(r"fedgate --db (\S+) partner new", text)
    assert match is not None, text
    suggested = Path(match.group(1))
    cfg = config.load(tmp_path / "conf" / "fedgate.toml")
    assert suggested.is_absolute() and suggested == cfg.database
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("--db", str(suggested), "partner", "new", "partner.example", "--tls", "required", "--sasl",
                 "optional", "--dialback", "--partner-type", "federated")
    assert result.exit_code == 0, result.stderr
    store = SqliteStore(cfg.database)
    try:
        assert [p.domain for p in store.list_partners()] == ["partner.example"]
    finally:
        store.close()
    # The commented file says where metrics are and that bodies are logged only with log_message_bodies.
    assert "log_message_bodies" in text and "metrics" in text
    assert not (tmp_path / "conf" / "admin-token").exists()  # init writes no token; serve does


def test_init_state_dir_matches_the_systemd_unit(tmp_path: Path) -> None:
    """deploy/fedgate.service can write only its state directory: the config `fedgate init --state-dir` writes
    (the command the unit documents) keeps the database and the admin token there, not next to the config."""
    unit = (Path(__file__).parent.parent / "deploy" / "fedgate.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    writable = {Path(p) for p in settings["ReadWritePaths"].split()}
    writable.add(Path("/var/lib") / settings["StateDirectory"])
    documented = re.search(r"fedgate init --dir (\S+) --state-dir (\S+)", unit)
    assert documented is not None
    config_dir, state_dir = Path(documented.group(1)), Path(documented.group(2))
    assert f"--config {config_dir / 'fedgate.toml'}" in settings["ExecStart"]
    assert state_dir in writable and config_dir not in writable
    # The same command, rooted in tmp_path.
    root = tmp_path / "root"
    result = run("init", "--dir", str(root / config_dir.relative_to("/")),
                 "--state-dir", str(root / state_dir.relative_to("/")))
    assert result.exit_code == 0, result.stderr
    cfg = config.load(root / config_dir.relative_to("/") / "fedgate.toml")
    assert cfg.database == root / state_dir.relative_to("/") / "fedgate.sqlite3"
    assert cfg.admin_token_file == root / state_dir.relative_to("/") / "admin-token"
    assert cfg.database.parent.is_dir()  # made, so that `fedgate serve` can start without systemd too
