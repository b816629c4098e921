"""Ceilings with no XMPP and no network: what one core can do at most with the same ingredients.

* ``tls``: full TLS handshakes per second with the same key type (ECDSA P-256 from :mod:`fedgate.certs`) and
  the same protocol settings as :mod:`fedgate.tls` (TLS 1.2+, no tickets or session cache, the client
  presents its certificate and the server verifies it against the CA, in C: no Python verify callback), both
  ends in pyOpenSSL over memory BIOs in one process. The rate given is the **server side's** (time spent in
  the server's calls only), the figure a server core can reach; the client's share is reported beside it.
* ``parse``: pyexpat's raw rate on the 200-byte relay stanzas (namespace processing on, handlers that only
  count first-level elements), and :class:`fedgate.xmlstream.XmlStreamParser` on the same bytes.

    python -m bench.ceilings [--handshakes 500] [--stanzas 200000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from xml.parsers import expat

from OpenSSL import SSL

from fedgate.certs import TestCA
from fedgate.xmlstream import XmlStreamParser

from .wire import Component, header


def _context(ca: Path, chain: Path, key: Path, *, server: bool) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_TICKET | SSL.OP_CIPHER_SERVER_PREFERENCE)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.load_verify_locations(str(ca))
    ctx.use_certificate_chain_file(str(chain))
    ctx.use_privatekey_file(str(key))
    ctx.set_verify(SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if server else 0), None)
    return ctx


def _pending(conn: SSL.Connection) -> bytes:
    try:
        return conn.bio_read(65536)
    except SSL.WantReadError:
        return b""


def _step(conn: SSL.Connection) -> bool:
    try:
        conn.do_handshake()
        return True
    except SSL.WantReadError:
        return False


def tls_handshakes(count: int, workdir: Path) -> dict[str, Any]:
    ca = TestCA.create(workdir / "ca")
    s = ca.issue("server.test", workdir)
    c = ca.issue("client.test", workdir)
    sctx = _context(ca.cert_path, s.chain, s.key, server=True)
    cctx = _context(ca.cert_path, c.chain, c.key, server=False)
    server_time = client_time = 0.0
    version = None
    for _ in range(count):
        srv, cli = SSL.Connection(sctx, None), SSL.Connection(cctx, None)
        srv.set_accept_state()
        cli.set_connect_state()
        cli.set_tlsext_host_name(b"server.test")
        s_done = c_done = False
        while not (s_done and c_done):
            t0 = time.perf_counter()
            c_done = c_done or _step(cli)
            out = _pending(cli)
            t1 = time.perf_counter()
            client_time += t1 - t0
            if out:
                srv.bio_write(out)
            t0 = time.perf_counter()
            s_done = s_done or _step(srv)
            back = _pending(srv)
            server_time += time.perf_counter() - t0
            if back:
                cli.bio_write(back)
        version = srv.get_protocol_version_name()
    return {
        "library": "pyOpenSSL (OpenSSL) over memory BIOs",
        "key": "ECDSA P-256",
        "protocol": version,
        "handshakes": count,
        "server_per_second": round(count / server_time, 1),
        "client_per_second": round(count / client_time, 1),
        "both_ends_per_second": round(count / (server_time + client_time), 1),
    }


def stanza_stream(count: int) -> tuple[bytes, bytes]:
    comp = Component("gw.test", "secret", ("127.0.0.1", 0), "alice@gw.test/desk", "bob@load.test")
    stamp = time.perf_counter_ns()
    body = b"".join(comp.message(10**6 + i, stamp) for i in range(count))
    return header(to="gw.test", from_="load.test"), body


def parse_rates(count: int) -> dict[str, Any]:
    head, body = stanza_stream(count)
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]

    def raw_expat() -> int:
        p = expat.ParserCreate("UTF-8", " ")
        depth = n = 0

        def start(name: str, attrs: dict[str, str]) -> None:
            nonlocal depth
            depth += 1

        def end(name: str) -> None:
            nonlocal depth, n
            depth -= 1
            if depth == 1:
                n += 1

        p.StartElementHandler = start
        p.EndElementHandler = end
        p.buffer_text = True
        p.CharacterDataHandler = lambda data: None
        p.Parse(head, False)
        for chunk in chunks:
            p.Parse(chunk, False)
        return n

    def fedgate_parser() -> int:
        parser = XmlStreamParser()
        parser.feed(head)
        return sum(len(parser.feed(chunk)) for chunk in chunks)

    out: dict[str, Any] = {"stanza_bytes": len(body) // count, "stanzas": count}
    for name, fn in (("pyexpat_per_second", raw_expat), ("fedgate_parser_per_second", fedgate_parser)):
        best = 0.0
        for _ in range(3):
            t0 = time.perf_counter()
            n = fn()
            rate = n / (time.perf_counter() - t0)
            assert n == count, (name, n)
            best = max(best, rate)
        out[name] = round(best, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ceilings")
    p.add_argument("--handshakes", type=int, default=500)
    p.add_argument("--stanzas", type=int, default=200000)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedgate-ceiling-") as tmp:
        result = {"tls": tls_handshakes(args.handshakes, Path(tmp)), "parse": parse_rates(args.stanzas)}
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
