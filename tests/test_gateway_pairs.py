"""Two real gateways on loopback (real sockets, real TLS with certificates from a test CA, real dialback
connect-backs) for every pair of valid settings: the method negotiated on the wire is the policy engine's
pairwise answer, and failures happen exactly where it says, for a reason it gives (the same method, side and
rule), with nothing authenticated either way."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement

import pytest

from fedgate import policy
from fedgate.certs import TestCA
from fedgate.s2s import Authenticated, NegotiationFailed

from .net.gateways import Node, make_node, settle

VALID = [s for s in policy.ALL_SETTINGS if policy.evaluate(s).valid]
ROUTES = {"a.test": "127.0.0.10:5269", "b.test": "127.0.0.11:5269"}


def _message(frm: str, to: str) -> Element:
    msg = Element("{jabber:server}message", {"from": frm, "to": to, "type": "chat", "id": "m1"})
    SubElement(msg, "{jabber:server}body").text = "hello"
    return msg


async def _negotiate(a: Node, b: Node) -> tuple[str | None, list[NegotiationFailed], int]:
    """a sends b a stanza; return the method a's outbound stream authenticated with, the failures either side
    recorded, and how many streams either side authenticated."""
    a.events.clear()
    b.events.clear()
    a.gateway.send_to_partner(a.domain, b.domain, _message(f"x@{a.domain}", f"y@{b.domain}"))
    for _ in range(500):
        await asyncio.sleep(0.01)
        link = a.gateway.links.get((a.domain, b.domain))
        outs = [e for d, e in a.events if d == "out" and isinstance(e, Authenticated) and e.remote_domain == b.domain]
        fails = [e for d, e in a.events if d == "out" and isinstance(e, NegotiationFailed)]
        if outs:
            ins = [e for d, e in b.events if d == "in" and isinstance(e, Authenticated)]
            assert ins and ins[-1].method == outs[-1].method
            return outs[-1].method.value, [], len(outs)
        if fails or link is None:
            await asyncio.sleep(0.05)  # b's side of the same failure, if it records one
            fails += [e for d, e in b.events if d == "in" and isinstance(e, NegotiationFailed)]
            auths = sum(isinstance(e, Authenticated) for _, e in a.events + b.events)
            return None, fails, auths
    raise AssertionError("negotiation neither finished nor failed")


_FLIP = {"local": "remote", "remote": "local"}


def _failure_mismatch(
    local: policy.Settings, remote: policy.Settings, cert_ok: bool, fails: list[NegotiationFailed]
) -> str | None:
    """Why the recorded failures do not agree with the policy engine's reasons, or None when they do. a must
    record a failure; it, or b's record of the same stream (b's sides seen from a), must name a method the
    engine excluded with the same side and rule; and a's own record must name such a method with the same
    side at least (a cannot see b's settings: only that b did not offer the method)."""
    engine = policy.negotiate(local, remote, initiator_certificate_valid=cert_ok).excluded
    ours = [e for f in fails if f.direction == "out" and f.local_domain == "a.test" for e in f.excluded]
    theirs = [e for f in fails if f.direction == "in" and f.local_domain == "b.test" for e in f.excluded]
    if not ours:
        return "a recorded no failure"
    exact = {(e.method, e.side, e.rule) for e in engine}
    recorded = {(e.method, e.side, e.rule) for e in ours} | {(e.method, _FLIP[e.side], e.rule) for e in theirs}
    same_side = {(e.method, e.side) for e in ours} & {(e.method, e.side) for e in engine}
    if recorded & exact and same_side:
        return None
    named = sorted(f"{m}/{side}/{rule}" for m, side, rule in recorded)
    return f"recorded {named} against the engine's {sorted(f'{m}/{side}/{rule}' for m, side, rule in exact)}"


@pytest.mark.parametrize("cert_ok", [True, False], ids=["initiator-cert-valid", "initiator-cert-for-other-name"])
def test_every_valid_pair_on_the_wire(tmp_path: Path, cert_ok: bool) -> None:
    async def main() -> list[tuple[str, str, str | None, str | None]]:
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, "a.test", "127.0.0.10", ROUTES,
                            cert_names=None if cert_ok else ["other.test"])
        b = await make_node(tmp_path, ca, "b.test", "127.0.0.11", ROUTES)
        mismatches = []
        try:
            for local, remote in itertools.product(VALID, VALID):
                a.set_partner("b.test", local)
                b.set_partner("a.test", remote)
                got, fails, auths = await _negotiate(a, b)
                want = policy.negotiate(local, remote, initiator_certificate_valid=cert_ok).method
                if got != (want.value if want else None):
                    mismatches.append((str(local), str(remote), want.value if want else None, got))
                elif want is None:
                    why = _failure_mismatch(local, remote, cert_ok, fails)
                    if why is not None or auths:
                        mismatches.append((str(local), str(remote), None, f"{why}; {auths} authenticated"))
                await settle([a.gateway, b.gateway])
        finally:
            await a.gateway.stop()
            await b.gateway.stop()
        return mismatches

    mismatches = asyncio.run(main())
    assert not mismatches, "\n".join(map(str, mismatches[:20])) + f"\n{len(mismatches)} mismatches of 169"
