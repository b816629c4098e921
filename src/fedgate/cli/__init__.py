"""The ``fedgate`` command. Subcommands are named after the Lync cmdlets (New-CsXmppAllowedPartner ->
``fedgate partner new``); tables are for people, ``--format json`` is for scripts.

Exit codes: 0 success; 1 refused (invalid settings, unknown partner, a domain already taken); 2 usage error
(including a value an option does not allow). Every error is one line on stderr, in the chosen language,
naming the field and what it allows; warnings go to stderr too and leave the exit code alone.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..i18n import LANGUAGES, detect_language, normalize_language, set_language, t
from ..partners import InvalidSettings
from ..policy import SettingError
from ..store import DB_ENV, DatabaseUnusable, PartnerExists, SchemaTooNew, StoreError, UnknownPartner
from .demo import demo
from .gateway import gateway
from .init import init
from .output import error_line, note_line
from .partner import partner
from .policy import policy
from .probe import probe_command
from .serve import serve, status
from .state import State
from .types import (
    CatalogueType,
    FieldType,
    Group,
    LineUsageError,
    ValueUsageError,
    localise,
    option_list,
    setting_error_text,
)

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2

# click >= 8.2 raises this for a group run without a subcommand.
_NO_ARGS_IS_HELP: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_Never", (click.UsageError,), {})
)


def store_error_text(error: StoreError) -> str:
    if isinstance(error, PartnerExists):
        return t("cli.error.exists", field=error.field, domain=error.domain, owner=error.owner)
    if isinstance(error, UnknownPartner):
        return t("cli.error.unknown_partner", domain=error.domain)
    if isinstance(error, DatabaseUnusable):
        return t("cli.error.db", path=error.path, problem=t(f"db.problem.{error.problem}"))
    if isinstance(error, SchemaTooNew):
        return t("cli.error.schema_too_new", found=error.found, known=error.known)
    return str(error)


def _allowed(param: click.Parameter) -> str:
    """What ``param`` allows, in words."""
    if isinstance(param.type, FieldType | CatalogueType):
        return param.type.allowed()
    if isinstance(param, click.Option) and param.secondary_opts:
        return option_list([*param.opts, *param.secondary_opts])
    return t("cli.allowed.see_help")


def usage_error_text(error: click.UsageError) -> str:
    if isinstance(error, ValueUsageError | LineUsageError):
        return error.message
    if isinstance(error, click.MissingParameter) and error.param is not None:
        param = error.param
        name = param.opts[0] if isinstance(param, click.Option) else (param.name or "").upper()
        return t("cli.error.missing", field=name, allowed=_allowed(param))
    command = error.ctx.command if error.ctx is not None else None
    params = command.get_params(error.ctx) if command is not None and error.ctx is not None else []
    options = [o for p in params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)]
    if isinstance(error, click.NoSuchOption):
        return t("cli.error.no_such_option", option=error.option_name, allowed=option_list(options))
    if isinstance(error, click.BadOptionUsage) and command is not None:
        used = next((p for p in command.params if error.option_name in (*p.opts, *p.secondary_opts)), None)
        if isinstance(used, click.Option) and used.is_flag:
            allowed = option_list([*used.opts, *used.secondary_opts])
            return t("cli.error.takes_no_value", option=error.option_name, allowed=allowed)
        if used is not None:
            return t("cli.error.requires_value", option=error.option_name, allowed=_allowed(used))
    return t("cli.error.usage", message=error.format_message())


def refusal_lines(error: Exception) -> list[str]:
    """The lines for a refused change: the refusal, then (for invalid settings) every reason."""
    if isinstance(error, StoreError):
        return [error_line(store_error_text(error))]
    assert isinstance(error, SettingError)
    lines = [error_line(setting_error_text(error))]
    if isinstance(error, InvalidSettings):
        lines += ["  " + note_line(note) for note in error.errors]
    return lines


class FedgateGroup(Group):
    """Runs the command and turns every error into the one-line, translated form with the documented exit code."""

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        set_language(detect_language())
        extra["standalone_mode"] = False
        try:
            result = super().main(args, "fedgate", **extra)  # whatever runs it, the command is fedgate
        except _NO_ARGS_IS_HELP as error:  # a bare group: its help, as click shows it
            click.echo(error.format_message(), err=True)
            sys.exit(EXIT_USAGE)
        except click.UsageError as error:
            click.echo(error_line(usage_error_text(error)), err=True)
            sys.exit(EXIT_USAGE)
        except DatabaseUnusable as error:  # the --db value cannot be used: a usage error, like any bad value
            click.echo(error_line(store_error_text(error)), err=True)
            sys.exit(EXIT_USAGE)
        except (SettingError, StoreError) as error:
            for line in refusal_lines(error):
                click.echo(line, err=True)
            sys.exit(EXIT_REFUSED)
        except click.ClickException as error:
            click.echo(error_line(error.format_message()), err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            sys.exit(EXIT_REFUSED)
        sys.exit(result if isinstance(result, int) else EXIT_OK)


def _language(value: object) -> str:
    lang = normalize_language(value) if isinstance(value, str) else None
    if lang is None:
        raise SettingError("lang", value, LANGUAGES)
    return lang


@click.group(cls=FedgateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=DB_ENV,
    help=f"The SQLite database (default: ${DB_ENV}, else fedgate.sqlite3 in the user data directory).",
)
@click.option(
    "--lang",
    type=FieldType("lang", _language, "|".join(LANGUAGES)),
    is_eager=True,  # before any other value is checked, so that its error is in this language too
    callback=lambda _ctx, _param, lang: set_language(lang) if lang else None,
    help="Language of the output (default: from LC_ALL / LC_MESSAGES / LANG).",
)
@click.pass_context
def cli(ctx: click.Context, db: Path | None, lang: str | None) -> None:
    """fedgate: XMPP federation gateway administration."""
    ctx.obj = State(db)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="fedgate")


for _command in (partner, gateway, policy, serve, status, demo, probe_command, init):
    cli.add_command(_command)
localise(cli)

__all__ = ["EXIT_OK", "EXIT_REFUSED", "EXIT_USAGE", "cli", "main"]
