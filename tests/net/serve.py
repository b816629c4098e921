"""A ``fedgate serve`` process of the tests' own: its config file, written from plain values."""

from __future__ import annotations

from pathlib import Path

from fedgate.certs import CertFiles, TestCA


def write_config(path: Path, *, db: Path, domain: str, files: CertFiles, ca: TestCA, ip: str,
                 routes: dict[str, str], log_level: str | None = None) -> Path:
    """``fedgate.toml`` for one domain on ``ip`` (S2S 5269, component 5347, secret ``secret``), trusting only the
    test CA, with static routes instead of DNS."""
    level = f'log_level = "{log_level}"\n' if log_level else ""
    route_table = ", ".join(f'"{name}" = "{target}"' for name, target in routes.items())
    path.write_text(f"""
[gateway]
database = "{db}"
{level}
[[domain]]
name = "{domain}"
certificate = "{files.chain}"
key = "{files.key}"
component_secret = "secret"

[listen]
s2s = ["{ip}:5269"]
component = "{ip}:5347"

[trust]
system = false
cafiles = ["{ca.cert_path}"]

[dns]
use_srv = false
static_routes = {{ {route_table} }}
""")
    return path
