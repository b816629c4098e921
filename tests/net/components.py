"""A real XEP-0114 component (slixmpp) for the end-to-end tests: it records what reaches it, answers
messages whose body starts with "ping" with "pong", and can send a message and wait for the answer."""

from __future__ import annotations

import asyncio
from typing import Any

import slixmpp


class EchoComponent(slixmpp.ComponentXMPP):  # type: ignore[misc]
    def __init__(self, domain: str, secret: str, host: str, port: int) -> None:
        super().__init__(domain, secret, host, port)
        self.received: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.errors: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.add_event_handler("session_start", self._on_start)
        self.add_event_handler("message", self._on_message)
        self.add_event_handler("message_error", self._on_error)

    def _on_start(self, _event: Any) -> None:
        if not self.ready.done():
            self.ready.set_result(None)

    def _on_message(self, msg: slixmpp.Message) -> None:
        self.received.put_nowait(msg)
        body = str(msg["body"])
        if body.startswith("ping"):
            msg.reply("pong" + body[4:]).send()

    def _on_error(self, msg: slixmpp.Message) -> None:
        self.errors.put_nowait(msg)

    async def start(self, timeout: float = 10) -> None:
        self.connect()
        await asyncio.wait_for(self.ready, timeout)

    def say(self, frm: str, to: str, body: str) -> None:
        self.send_message(mto=to, mfrom=frm, mbody=body, mtype="chat")

    async def next_message(self, timeout: float = 10) -> slixmpp.Message:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def next_error(self, timeout: float = 10) -> slixmpp.Message:
        return await asyncio.wait_for(self.errors.get(), timeout)

    async def stop(self) -> None:
        self.disconnect()
        await asyncio.sleep(0.05)


def error_condition(msg: slixmpp.Message) -> str | None:
    """The RFC 6120 condition of an error stanza. Read from the XML: slixmpp's error plugin looks for
    ``jabber:client`` children and misses them on a component stream (``jabber:component:accept``)."""
    for child in msg.xml:
        if child.tag.endswith("}error"):
            for cond in child:
                ns, _, name = cond.tag[1:].partition("}")
                if ns == "urn:ietf:params:xml:ns:xmpp-stanzas" and name != "text":
                    return name
    return None
