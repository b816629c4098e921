"""`fedgate probe` against a live Prosody under several policies: what it reports Prosody offering matches
the policy Prosody runs with, and the method it predicts follows from our settings and those offers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fedgate.certs import TestCA
from fedgate.cli import cli
from fedgate.probe import probe

from .prosody import GATEWAY_DOMAIN, PROSODY_DOMAIN, PROSODY_IP, ProsodyPolicy, ProsodyServer

pytestmark = pytest.mark.prosody

CASES = [
    # policy, STARTTLS offered, required, dialback offered before TLS
    (ProsodyPolicy("required", "required", dialback=False), True, True, False),
    (ProsodyPolicy("optional", "optional", dialback=True), True, False, True),
    (ProsodyPolicy("not_supported", "not_supported", dialback=True), False, False, True),
]


@pytest.mark.parametrize(("prosody_policy", "offered", "required", "dialback"), CASES, ids=[str(c[0]) for c in CASES])
def test_probe_reports_what_prosody_offers(
    prosody: ProsodyServer, prosody_policy: ProsodyPolicy, offered: bool, required: bool, dialback: bool
) -> None:
    report = asyncio.run(
        probe(PROSODY_DOMAIN, connect=f"{PROSODY_IP}:5269", cafiles=[prosody.cafile], use_system_trust=False)
    )
    assert report.starttls == {"offered": offered, "required": required}
    assert report.dialback["before_tls"] is dialback
    if offered:
        assert report.tls is not None and report.tls["version"] == "TLSv1.3"
        cert = report.certificate
        assert cert is not None and cert["chain_valid"] and cert["matches_domain"]
        if prosody_policy.sasl == "required":
            # s2s_secure_auth: Prosody closes right after TLS on a peer without a valid client certificate
            # (the probe presents none), so the features after TLS are never seen.
            assert report.stream_error is not None and report.stream_error["condition"] == "not-authorized"
            assert report.dialback["after_tls"] is None
        else:
            assert report.stream_error is None
            assert report.dialback["after_tls"] is dialback
    else:
        assert report.certificate is None
    # Not a partner of ours: the defaults (required/required/on) decide; they need STARTTLS.
    if not offered:
        assert report.method is None and report.reasons


@pytest.mark.parametrize(
    "prosody_policy", [ProsodyPolicy("not_supported", "not_supported", dialback=True)], ids=["prosody-no-tls"]
)
def test_probe_command_explains_why_no_method(prosody: ProsodyServer, tmp_path: Path) -> None:
    db = str(tmp_path / "probe.sqlite3")
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", db, "partner", "new", PROSODY_DOMAIN, "--tls", "required",
                               "--sasl", "not_supported", "--dialback"]).exit_code == 0
    result = runner.invoke(cli, ["--db", db, "--lang", "en", "probe", PROSODY_DOMAIN, "--connect",
                                 f"{PROSODY_IP}:5269", "--format", "json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["starttls"]["offered"] is False and data["method"] is None
    texts = " ".join(r["text"] for r in data["reasons"])
    assert "TLS set to required" in texts


@pytest.mark.parametrize(
    "prosody_policy", [ProsodyPolicy("required", "required", dialback=False)], ids=["prosody-secure-auth"]
)
def test_probe_with_our_certificate_sees_sasl_external(
    prosody: ProsodyServer, interop_ca: TestCA, interop_dir: Path
) -> None:
    """Presenting gw.test's certificate, the probe gets past s2s_secure_auth and sees EXTERNAL offered."""
    certs = interop_ca.issue(GATEWAY_DOMAIN, interop_dir / "probe-certs")
    runner = CliRunner()
    result = runner.invoke(cli, ["--lang", "en", "probe", PROSODY_DOMAIN, "--from", GATEWAY_DOMAIN, "--connect",
                                 f"{PROSODY_IP}:5269", "--cafile", str(prosody.cafile), "--cert", str(certs.chain),
                                 "--key", str(certs.key), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["stream_error"] is None
    assert data["sasl_mechanisms"] == ["EXTERNAL"]
    assert data["settings"]["sasl_observed"] is True
    assert data["method"] == "sasl_tls"
    # --cert without --key is a usage error naming the missing option.
    result = runner.invoke(cli, ["--lang", "en", "probe", PROSODY_DOMAIN, "--cert", str(certs.chain)])
    assert result.exit_code == 2 and "--key" in result.output
