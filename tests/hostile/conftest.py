"""Fixtures of the hostile-input suite: one lab (two real gateways, components, a fake partner) for the whole
package, and around each test the legitimate partner's check (see ``lab.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .lab import Lab


@pytest.fixture(scope="package")
def hostile_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("hostile"))
    lab.start()
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(hostile_lab: Lab) -> Iterator[Lab]:
    """The lab, with the legitimate g.test <-> l.test exchange checked before and after the test, and the
    attacker's connections checked gone afterwards."""
    hostile_lab.reset()
    hostile_lab.check_legit()
    yield hostile_lab
    hostile_lab.run(hostile_lab.attackers_gone())
    hostile_lab.check_legit()
