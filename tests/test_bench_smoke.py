"""The benchmarks still work: every scenario of ``bench.run`` for a tiny count against fedgate (its own process,
on loopback), and the report renders. Checks the shape of the results, never the speed."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from bench.report import table

ROOT = Path(__file__).resolve().parent.parent


def test_every_benchmark_runs_for_a_tiny_count(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    subnet = f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}"  # apart from any other run
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--targets", "fedgate", "--quick", "--out", str(out), "--subnet", subnet],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())

    assert {"nproc", "cpu", "date"} <= results["machine"].keys()
    tls, parse = results["ceilings"]["tls"], results["ceilings"]["parse"]
    assert tls["key"] == "ECDSA P-256" and tls["server_per_second"] > 0
    assert parse["stanza_bytes"] == 200 and parse["pyexpat_per_second"] > 0

    fedgate = results["targets"]["fedgate"]
    for method in ("sasl_tls", "tls_dialback", "tcp_dialback"):
        auth = fedgate[f"auth:{method}"]
        assert auth["method"] == method
        assert auth["authentications"] > 0 and auth["failures"] == 0, auth
        assert auth["per_second"] > 0 and auth["target_cpu"] >= 0
    # The connect-backs reached the tool's authoritative server and were answered valid.
    assert fedgate["auth:tcp_dialback"]["verifies"]["valid"] > 0
    assert fedgate["auth:sasl_tls"]["verifies"]["valid"] == 0

    relay = fedgate["relay"]
    assert relay["stanza_bytes"] == 200 and relay["per_second"] > 0
    latency = relay["latency"]
    assert latency["lost"] == 0 and latency["stanzas"] > 0
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"]

    idle = fedgate["idle"]
    assert [p["streams"] for p in idle["points"]] == [5, 10]
    assert all(p["alive"] == p["streams"] and p["rss_bytes"] > 0 for p in idle["points"])

    rendered = table(results)
    assert "| authentications/s, dialback over TCP |" in rendered
    assert done.stdout.strip().startswith("| figure |")
