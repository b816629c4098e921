"""The results of :mod:`bench.run` as the Markdown table of BENCHMARKS.md.

    python -m bench.report bench-results.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_METHOD_NAMES = {
    "sasl_tls": "SASL EXTERNAL over TLS",
    "tls_dialback": "dialback over TLS",
    "tcp_dialback": "dialback over TCP",
}


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def _ratio(a: Any, b: Any) -> str:
    if not isinstance(a, int | float) or not isinstance(b, int | float) or not b:
        return "-"
    return f"{a / b:.2f}"


def rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per figure: what, fedgate, Prosody, ceiling, fedgate/Prosody, fedgate/ceiling, CPU used."""
    t = results.get("targets", {})
    fg, pr = t.get("fedgate", {}), t.get("prosody", {})
    tls_ceiling = _get(results, "ceilings", "tls", "server_per_second")
    parse_ceiling = _get(results, "ceilings", "parse", "pyexpat_per_second")
    out = []

    def cpu(key: str, *path: str) -> str:
        parts = []
        for name, res in (("f", fg), ("p", pr)):
            v = _get(res, key, *path)
            if v is not None:
                parts.append(f"{name} {v:.0%}")
        return " / ".join(parts) or "-"

    for method, label in _METHOD_NAMES.items():
        key = f"auth:{method}"
        a, b = _get(fg, key, "per_second"), _get(pr, key, "per_second")
        ceiling = tls_ceiling if method != "tcp_dialback" else None
        out.append([f"authentications/s, {label}", _fmt(a, 1), _fmt(b, 1), _fmt(ceiling, 0), _ratio(a, b),
                    _ratio(a, ceiling), cpu(key, "target_cpu")])
    a, b = _get(fg, "relay", "per_second"), _get(pr, "relay", "per_second")
    out.append(["relay stanzas/s (200 B, one S2S stream)", _fmt(a), _fmt(b), _fmt(parse_ceiling),
                _ratio(a, b), _ratio(a, parse_ceiling), cpu("relay", "target_cpu")])
    rate = _get(fg, "relay", "latency", "rate") or _get(pr, "relay", "latency", "rate")
    for q in ("p50_ms", "p99_ms"):
        a, b = _get(fg, "relay", "latency", q), _get(pr, "relay", "latency", q)
        out.append([f"latency {q[:3]} at {_fmt(rate)} stanzas/s (ms)", _fmt(a, 2), _fmt(b, 2), "-",
                    _ratio(a, b), "-", cpu("relay", "latency", "target_cpu")])
    for i, _ in enumerate(_get(fg, "idle", "points") or _get(pr, "idle", "points") or []):
        a = _get(fg, "idle", "points")
        b = _get(pr, "idle", "points")
        pa = a[i] if a and i < len(a) else {}
        pb = b[i] if b and i < len(b) else {}
        streams = pa.get("streams") or pb.get("streams")
        va, vb = pa.get("bytes_per_stream"), pb.get("bytes_per_stream")
        out.append([f"memory per idle S2S stream at {_fmt(streams)} streams (bytes)", _fmt(va), _fmt(vb), "-",
                    _ratio(va, vb), "-", "-"])
    return out


def table(results: dict[str, Any]) -> str:
    head = ["figure", "fedgate", "Prosody 0.12", "ceiling", "fedgate/Prosody", "fedgate/ceiling",
            "target CPU (f / p)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    rounds = [f"{name} {scenario}: rounds " + ", ".join(f"{r:,.1f}" for r in result["rounds"]) + " (median above)"
              for name, scenarios in results.get("targets", {}).items()
              for scenario, result in scenarios.items() if len(result.get("rounds", [])) > 1]
    targets = results.get("targets", {})
    for scenario in sorted(targets.get("fedgate", {})):
        ours = targets["fedgate"][scenario].get("rounds", [])
        theirs = targets.get("prosody", {}).get(scenario, {}).get("rounds", [])
        if len(ours) > 1 and len(ours) == len(theirs):  # round by round: the two ran one after the other
            ratios = sorted(a / b for a, b in zip(ours, theirs, strict=True) if b)
            if ratios:
                rounds.append(f"fedgate/Prosody {scenario}, round by round: "
                              + ", ".join(f"{a / b:.2f}" for a, b in zip(ours, theirs, strict=True) if b)
                              + f" (median {ratios[(len(ratios) - 1) // 2]:.2f})")
    if rounds:
        lines += ["", *(f"- {r}" for r in rounds)]
    m = results.get("machine", {})
    if m:
        lines.append("")
        lines.append(f"Machine: {m.get('nproc')} cores ({m.get('cpu')}), Python {m.get('python')}, "
                     f"Prosody {m.get('prosody')}, {m.get('date')}, "
                     f"fedgate on {m.get('fedgate_event_loop', 'asyncio')}.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    print(table(json.loads(Path(args[0]).read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
