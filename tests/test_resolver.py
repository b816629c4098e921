"""Resolver tests: SRV logic through the pure order_srv and a fake DNS resolver; no query leaves the machine."""

from __future__ import annotations

import asyncio
import random
import socket
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

import dns.exception
import dns.rdata
import dns.resolver
import pytest

from fedgate.resolver import (
    ResolutionError,
    Resolver,
    SrvRecord,
    Target,
    order_srv,
    parse_host_port,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def srv(text: str) -> Any:
    """A real dnspython SRV rdata, parsed offline."""
    return dns.rdata.from_text("IN", "SRV", text)


class FakeDns:
    """Answers SRV questions from a table; an exception instance in the table is raised."""

    def __init__(self, answers: dict[str, list[Any] | Exception]) -> None:
        self.answers = answers
        self.queries: list[tuple[str, str, float | None]] = []

    async def resolve(self, qname: str, rdtype: str, *, lifetime: float | None = None) -> Any:
        self.queries.append((qname, rdtype, lifetime))
        answer = self.answers.get(qname, dns.resolver.NXDOMAIN())
        if isinstance(answer, Exception):
            raise answer
        return answer


class ExplodingDns:
    async def resolve(self, qname: str, rdtype: str, *, lifetime: float | None = None) -> Any:
        raise AssertionError(f"no DNS query expected, got {qname} {rdtype}")


# -- order_srv --------------------------------------------------------------------------------------------------


def test_order_srv_by_priority() -> None:
    records = [SrvRecord(20, 0, 5269, "c"), SrvRecord(10, 0, 5269, "a"), SrvRecord(15, 0, 5270, "b")]
    assert [r.target for r in order_srv(records, random.Random(1))] == ["a", "b", "c"]


def test_order_srv_empty() -> None:
    assert order_srv([], random.Random(1)) == []


def test_order_srv_weights_are_proportional() -> None:
    records = [SrvRecord(10, 60, 5269, "heavy"), SrvRecord(10, 30, 5269, "medium"), SrvRecord(10, 10, 5269, "light")]
    rng = random.Random(42)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(5000))
    assert 0.55 < firsts["heavy"] / 5000 < 0.65
    assert 0.25 < firsts["medium"] / 5000 < 0.35
    assert 0.07 < firsts["light"] / 5000 < 0.13


def test_order_srv_is_a_permutation_within_each_priority() -> None:
    records = [
        SrvRecord(10, 1, 1, "a"), SrvRecord(10, 0, 2, "b"), SrvRecord(10, 5, 3, "c"),
        SrvRecord(5, 0, 4, "d"), SrvRecord(5, 0, 5, "e"),
    ]
    rng = random.Random(7)
    for _ in range(200):
        ordered = order_srv(records, rng)
        assert sorted(ordered, key=lambda r: r.port) == sorted(records, key=lambda r: r.port)
        assert {r.target for r in ordered[:2]} == {"d", "e"}


def test_order_srv_zero_weight_rarely_first() -> None:
    records = [SrvRecord(10, 0, 5269, "zero"), SrvRecord(10, 100, 5269, "hundred")]
    rng = random.Random(3)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(2000))
    assert firsts["zero"] < 60  # picked only when the random number is 0: about 1 in 101
    assert firsts["zero"] > 0


def test_order_srv_all_zero_weights() -> None:
    records = [SrvRecord(1, 0, 1, "a"), SrvRecord(1, 0, 2, "b")]
    rng = random.Random(0)
    assert {order_srv(records, rng)[0].target for _ in range(100)} == {"a"}  # RFC 2782 picks the first


# -- parse_host_port ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("xmpp.example", Target("xmpp.example", 5269)),
        ("xmpp.example.", Target("xmpp.example", 5269)),
        ("xmpp.example:5270", Target("xmpp.example", 5270)),
        ("127.0.0.2:15269", Target("127.0.0.2", 15269)),
        ("[::1]:5270", Target("::1", 5270)),
        ("[::1]", Target("::1", 5269)),
        ("::1", Target("::1", 5269)),
    ],
)
def test_parse_host_port(text: str, target: Target) -> None:
    assert parse_host_port(text) == target


@pytest.mark.parametrize("text", ["", ":5269", "host:", "host:0", "host:65536", "host:x", "[::1", "[::1]x"])
def test_parse_host_port_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text)


# -- Resolver.targets ---------------------------------------------------------------------------------------------


def test_proxy_overrides_everything() -> None:
    resolver = Resolver(dns_resolver=ExplodingDns(), static_routes={"a.example": "127.0.0.9"})
    assert run(resolver.targets("a.example", proxy_fqdn="gw.example")) == [Target("gw.example", 5269)]
    assert run(resolver.targets("a.example", proxy_fqdn="gw.example:5999")) == [Target("gw.example", 5999)]


def test_static_routes() -> None:
    resolver = Resolver(dns_resolver=ExplodingDns(), static_routes={"A.Example": "127.0.0.2:15269"})
    assert run(resolver.targets("a.example")) == [Target("127.0.0.2", 15269)]
    assert run(resolver.targets("a.EXAMPLE.")) == [Target("127.0.0.2", 15269)]


def test_no_srv_means_domain_itself() -> None:
    resolver = Resolver(dns_resolver=ExplodingDns(), use_srv=False)
    assert run(resolver.targets("Bücher.example")) == [Target("xn--bcher-kva.example", 5269)]


def test_srv_records_ordered() -> None:
    fake = FakeDns(
        {
            "_xmpp-server._tcp.a.example": [
                srv("20 0 5269 backup.a.example."),
                srv("10 0 5270 primary.a.example."),
            ]
        }
    )
    resolver = Resolver(dns_resolver=fake, timeout=2.5)
    assert run(resolver.targets("a.example")) == [
        Target("primary.a.example", 5270),
        Target("backup.a.example", 5269),
    ]
    assert fake.queries == [("_xmpp-server._tcp.a.example", "SRV", 2.5)]


def test_srv_dot_means_not_available() -> None:
    resolver = Resolver(dns_resolver=FakeDns({"_xmpp-server._tcp.a.example": [srv("0 0 0 .")]}))
    with pytest.raises(ResolutionError) as info:
        run(resolver.targets("a.example"))
    assert info.value.condition == "remote-server-not-found"


def test_srv_dot_among_others_is_skipped() -> None:
    fake = FakeDns({"_xmpp-server._tcp.a.example": [srv("0 0 0 ."), srv("10 0 5269 x.a.example.")]})
    assert run(Resolver(dns_resolver=fake).targets("a.example")) == [Target("x.a.example", 5269)]


@pytest.mark.parametrize(
    "failure",
    [dns.resolver.NXDOMAIN(), dns.resolver.NoAnswer(), dns.exception.Timeout(), dns.resolver.NoNameservers(), []],
    ids=["nxdomain", "noanswer", "timeout", "nonameservers", "empty"],
)
def test_srv_failure_falls_back_to_domain(failure: list[Any] | Exception) -> None:
    resolver = Resolver(dns_resolver=FakeDns({"_xmpp-server._tcp.a.example": failure}))
    assert run(resolver.targets("a.example")) == [Target("a.example", 5269)]


def test_bad_domain() -> None:
    with pytest.raises(ResolutionError) as info:
        run(Resolver(dns_resolver=ExplodingDns()).targets(""))
    assert info.value.condition == "remote-server-not-found"


def test_bad_static_route_is_a_config_error() -> None:
    with pytest.raises(ValueError):
        Resolver(static_routes={"a.example": "host:99999"})


# -- Resolver.addresses (numeric hosts only: nothing is looked up) --------------------------------------------------


def test_addresses_numeric() -> None:
    resolver = Resolver(dns_resolver=ExplodingDns())
    assert run(resolver.addresses("127.0.0.2", 5269)) == [("127.0.0.2", 5269)]
    assert run(resolver.addresses("::1", 5270)) == [("::1", 5270)]


def test_addresses_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(self: asyncio.AbstractEventLoop, host: str, port: int, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", failing)
    with pytest.raises(ResolutionError) as info:
        run(Resolver(dns_resolver=ExplodingDns()).addresses("nowhere.example", 5269))
    assert info.value.condition == "remote-server-not-found"


def test_addresses_deduplicated(monkeypatch: pytest.MonkeyPatch) -> None:
    async def doubled(self: asyncio.AbstractEventLoop, host: str, port: int, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.3", port)),
        ]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", doubled)
    assert run(Resolver().addresses("x.example", 5269)) == [("127.0.0.3", 5269), ("::1", 5269)]
