"""What the ``fedgate`` group's options decide, handed to every subcommand."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..store import PartnerStore, open_store


@dataclass
class State:
    """The database (opened on first use, closed with the command) chosen by ``--db`` / ``$FEDGATE_DB``."""

    db: Path | None
    _store: PartnerStore | None = field(default=None, repr=False)

    def store(self) -> PartnerStore:
        if self._store is None:
            self._store = open_store(self.db)
            click.get_current_context().call_on_close(self._store.close)
        return self._store


pass_state = click.make_pass_decorator(State)


def given_options(ctx: click.Context, *names: str) -> dict[str, Any]:
    """The options named on the command line (or set from the environment): on ``set``, the fields to change."""
    return {
        name: ctx.params[name]
        for name in names
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    }
