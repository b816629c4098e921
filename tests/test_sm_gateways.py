"""XEP-0198 acknowledgements between two fedgate gateways on loopback: the receiving gateway's connection dies
(its transport aborted, a TCP reset) in the middle of a burst, after it had handled stanzas it never got to
acknowledge. Unlike ``tests/test_faults.py::test_partner_dies_during_a_burst`` (a raw partner without Stream
Management), nothing is lost: sent = delivered + bounced, every stanza at least once; one handled whose <a/>
died with the connection is delivered a second time (at-least-once, XEP-0198 without resumption).

Gateways: a.test on 127.0.0.150, b.test on 127.0.0.151."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fedgate import server
from fedgate.certs import TestCA
from fedgate.policy import Settings
from fedgate.s2s import S2SEvent, StanzaReceived

from .net.components import EchoComponent
from .net.gateways import make_node, settle
from .test_faults import Tally, guard_dns, say

A, A_IP = "a.test", "127.0.0.150"
B, B_IP = "b.test", "127.0.0.151"
ROUTES = {A: f"{A_IP}:5269", B: f"{B_IP}:5269"}
N = 3000  # stanzas in the burst
KILL_AFTER = 500  # b.test's inbound stream from a.test is reset when it has handed out this many


@pytest.mark.parametrize("triple", ["required/required/false", "not_supported/not_supported/true"])
def test_receiving_gateway_dies_mid_burst_nothing_is_lost(
        tmp_path: Path, triple: str, monkeypatch: pytest.MonkeyPatch) -> None:
    resent: list[str] = []
    real_send = server.Gateway.send_to_partner

    def send_to_partner(self: server.Gateway, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("resent"):
            resent.append(str(args[2].get("id")))
        real_send(self, *args, **kwargs)

    monkeypatch.setattr(server.Gateway, "send_to_partner", send_to_partner)

    async def main() -> None:
        guard_dns()
        ca = TestCA.create(tmp_path / "ca")
        a = await make_node(tmp_path, ca, A, A_IP, ROUTES, component_port=5347)
        b = await make_node(tmp_path, ca, B, B_IP, ROUTES, component_port=5347)
        settings = Settings.parse_triple(triple)
        a.set_partner(B, settings, partner_type="federated")
        b.set_partner(A, settings, partner_type="federated")
        comp_a = EchoComponent(A, "secret", A_IP, 5347)
        comp_b = EchoComponent(B, "secret", B_IP, 5347)
        await comp_a.start()
        await comp_b.start()
        handed_out = 0
        killed = asyncio.Event()

        def kill(direction: str, ev: S2SEvent) -> None:
            nonlocal handed_out
            if direction != "in" or not isinstance(ev, StanzaReceived) or killed.is_set():
                return
            handed_out += 1
            if handed_out == KILL_AFTER + 1:  # (the ping came first)
                for machine, conn in b.gateway._inbound_machines.values():
                    if machine.remote_domain == A and machine.authenticated:
                        conn.transport.abort()  # a reset: no </stream:stream>, no last <a/>
                killed.set()

        b.gateway.listeners.append(kill)
        tally = Tally(comp_a, N)
        try:
            comp_a.say(f"alice@{A}", f"bob@{B}", "ping")
            assert str((await comp_b.next_message())["body"]) == "ping"
            assert str((await comp_a.next_message())["body"]) == "pong"
            link = a.gateway.links[(A, B)]
            assert link.machine is not None and link.machine.sm_enabled
            for i in range(N):
                say(comp_a, f"alice@{A}", f"bob@{B}", i)
            delivered: list[str] = []

            def done() -> bool:
                while not comp_b.received.empty():
                    delivered.append(str(comp_b.received.get_nowait()["body"]))
                return set(delivered) | set(tally.bounced) >= {f"m{i}" for i in range(N)}

            await tally.collect_bounces(done, timeout=60)
            await asyncio.sleep(0.5)  # (a late duplicate would show)
            done()
            assert killed.is_set(), "the stream was not reset mid-burst"
            counts = Counter(delivered)
            assert set(delivered) | set(tally.bounced) == {f"m{i}" for i in range(N)}, "a stanza was lost"
            assert max(counts.values()) <= 2, "a stanza was delivered more than twice"
            assert not set(delivered) & set(tally.bounced), "a stanza was delivered and bounced"
            assert resent, "no stanza was written and left unacknowledged: the reset came too late to test"
            twice = sorted(m for m, c in counts.items() if c == 2)
            assert set(twice) <= set(resent), "delivered twice without having been resent"
            print(f"\n{triple}: sent {N}, delivered {len(counts)} ({len(twice)} twice), bounced "
                  f"{len(tally.bounced)}, resent after the reset {len(resent)}")
        finally:
            await comp_a.stop()
            await comp_b.stop()
            await settle([a.gateway, b.gateway])
            await a.gateway.stop()
            await b.gateway.stop()

    asyncio.run(main())
