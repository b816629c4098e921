"""The wire machines against the policy engine, pair by pair, in memory: every pair of valid settings
negotiates on the wire exactly the method ``policy.negotiate`` names, and fails exactly where it says."""

from __future__ import annotations

import itertools

import pytest

from fedgate import policy
from fedgate.policy import Method, Settings

from .memory_net import Server, outcome

VALID = [s for s in policy.ALL_SETTINGS if policy.evaluate(s).valid]


def test_thirteen_valid_rows() -> None:
    assert len(VALID) == 13  # 18 rows less the 5 the matrix marks invalid


@pytest.mark.parametrize("cert_ok", [True, False], ids=["cert-valid", "cert-invalid"])
def test_every_valid_pair_matches_the_policy_engine(cert_ok: bool) -> None:
    mismatches = []
    for local, remote in itertools.product(VALID, VALID):
        a = Server("a.test", {"b.test": local}, cert_valid=cert_ok)
        b = Server("b.test", {"a.test": remote})
        method, why = outcome(a, b)
        expected = policy.negotiate(local, remote, initiator_certificate_valid=cert_ok)
        exp = expected.method.value if expected.method else None
        if method != exp:
            mismatches.append((str(local), str(remote), exp, method, why))
    assert not mismatches, "\n".join(map(str, mismatches[:20])) + f"\n{len(mismatches)} mismatches"


def test_failure_names_our_settings_like_the_policy_engine() -> None:
    local = Settings.parse_triple("not_supported/not_supported/true")
    remote = Settings.parse_triple("required/required/false")
    a = Server("a.test", {"b.test": local})
    b = Server("b.test", {"a.test": remote})
    method, why = outcome(a, b)
    assert method is None
    failed = next(e for e in why if type(e).__name__ == "NegotiationFailed")
    wire_local = {(e.method, e.rule) for e in failed.excluded if e.side == "local"}
    engine_local = {(e.method, e.rule) for e in policy.negotiate(local, remote).excluded if e.side == "local"}
    assert wire_local == engine_local
    assert {e.method for e in failed.excluded} == set(Method)
