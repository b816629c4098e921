"""XEP-0198 acknowledgements with a real Prosody 0.12 that loads mod_smacks (the other interop tests run it
without, so there neither side enables Stream Management): Prosody enables it on its stream to us, we enable
it on ours to Prosody, 30 messages go each way, and every one is acknowledged, with no complaint in Prosody's
log. Only over SASL EXTERNAL: Prosody's mod_smacks offers and enables Stream Management on S2S only on
features it sends or receives once the stream is authenticated, which dialback never has (its features come
before it), so with dialback neither side uses it (and the other interop tests cover that)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fedgate.certs import TestCA
from fedgate.policy import Method
from fedgate.s2s import InboundStream

from .conftest import ProsodyPool, require_prosody
from .prosody import BASE_MODULES, GATEWAY_DOMAIN, PROSODY_DOMAIN, Client, ProsodyPolicy
from .test_prosody_federation import FORCING, _gateway, _until

pytestmark = pytest.mark.prosody


def test_stream_management_with_prosody(prosody_pool: ProsodyPool, interop_ca: TestCA, interop_dir: Path) -> None:
    require_prosody()
    method = Method.SASL_TLS
    tls, sasl, dialback = FORCING[method].split("/")
    policy = ProsodyPolicy(tls, sasl, dialback=dialback == "true")
    modules = [*BASE_MODULES, *policy.options()["modules_enabled"], "smacks"]
    prosody = prosody_pool.get(policy, extra_options={"modules_enabled": modules})
    prosody.reset()
    prosody.register("alice", "pw")
    directory = interop_dir / f"gw-sm-{method.value}"
    directory.mkdir(exist_ok=True)
    n = 30

    async def main() -> None:
        node, component = await _gateway(directory, interop_ca, method)
        try:
            async with Client(prosody, "alice", "pw") as alice:
                for i in range(n):
                    alice.send(f"bot@{GATEWAY_DOMAIN}", f"hello {i}")
                got = [str((await component.next_message(15))["body"]) for _ in range(n)]
                assert got == [f"hello {i}" for i in range(n)]
                for i in range(n):
                    component.say(f"bot@{GATEWAY_DOMAIN}", f"alice@{PROSODY_DOMAIN}", f"fedgate {i}")
                bodies = [str((await alice.receive(15))["body"]) for _ in range(n)]
                assert sorted(bodies) == sorted(f"fedgate {i}" for i in range(n))
                link = node.gateway.links[(GATEWAY_DOMAIN, PROSODY_DOMAIN)]
                assert link.machine is not None
                machine = link.machine
                await _until(lambda: not machine.unacknowledged)
                assert machine.sm_enabled, prosody.tail()
                inbound = [m for m, _ in node.gateway._inbound_machines.values()
                           if isinstance(m, InboundStream) and m.remote_domain == PROSODY_DOMAIN]
                assert [m.sm_enabled for m in inbound] == [True], prosody.tail()
                # Prosody sends <enable/> on a timer after our features: the first round can precede it and is
                # not counted (XEP-0198 4: h counts from <enable/>). A second round is.
                before = inbound[0].sm_handled
                for i in range(n):
                    alice.send(f"bot@{GATEWAY_DOMAIN}", f"again {i}")
                got = [str((await component.next_message(15))["body"]) for _ in range(n)]
                assert got == [f"again {i}" for i in range(n)]
                assert inbound[0].sm_handled == before + n
                log = prosody.log_text()
                for complaint in ("handled-count-too-high", "unexpected-request", "Ignoring \"a\"",
                                  "unacked stanzas"):
                    assert complaint not in log, prosody.tail(80)
        finally:
            await component.stop()
            await node.gateway.stop()

    asyncio.run(main())
