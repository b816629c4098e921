"""Option and argument types: every value goes through the model's own parser, and a value it refuses becomes a
usage error (exit 2) with the one-line, translated message that names the field and the allowed values."""

from __future__ import annotations

import copy
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..i18n import CATALOGUE, t
from ..partners import FieldError, InvalidSettings
from ..policy import SettingError


def allowed_text(error: SettingError) -> str:
    """What the field allows, in words: the kind's description from the catalogue, else the list of values."""
    if isinstance(error, InvalidSettings):
        return t("allowed.settings")
    if isinstance(error, FieldError) and f"allowed.{error.kind}" in CATALOGUE:
        return t(f"allowed.{error.kind}")
    return ", ".join(error.allowed)


def setting_error_text(error: SettingError) -> str:
    """One line naming the field, the value, what is wrong and what is allowed."""
    value = error.value if isinstance(error.value, str) else repr(error.value)
    if isinstance(error, InvalidSettings):
        return t("cli.error.invalid_settings", field=error.field, value=value, allowed=allowed_text(error))
    if isinstance(error, FieldError):
        return t(
            "cli.error.value_problem",
            field=error.field,
            value=value,
            problem=t(f"problem.{error.problem}", **error.details),
            allowed=allowed_text(error),
        )
    return t("cli.error.value", field=error.field, value=value, allowed=allowed_text(error))


class ValueUsageError(click.BadParameter):
    """A refused option value; its message is already the whole translated line."""


class LineUsageError(click.UsageError):
    """A usage error whose message is already the whole translated line."""


if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]
else:  # click < 8.2 has no type parameters at run time
    _ParamType = click.ParamType


_NO_VALUE = object()


class FieldType(_ParamType):
    """A click type that converts with ``parse`` (which raises ``SettingError``)."""

    def __init__(self, name: str, parse: Callable[[Any], Any], metavar: str | None = None) -> None:
        self.name = name
        self.parse = parse
        self.metavar = metavar or name.upper()

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return self.metavar

    def allowed(self) -> str:
        """The allowed values in words, for a missing-value message: what the parser says when given a value that
        no field accepts (the model's parsers refuse a non-text value with ``SettingError``)."""
        try:
            self.parse(_NO_VALUE)
        except SettingError as error:
            return allowed_text(error)
        except Exception:  # a parser that refuses in its own way: the form the option's help shows
            return self.metavar
        return self.metavar

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return self.parse(value)
        except InvalidSettings:
            raise  # well formed but refused by the policy engine: exit 1 with every reason, like a partner's
        except SettingError as error:
            raise ValueUsageError(setting_error_text(error), ctx, param) from None


def choice(field_name: str, choices: Sequence[str]) -> FieldType:
    """A closed set of values (case-insensitive)."""

    def parse(value: object) -> str:
        text = value.strip().lower() if isinstance(value, str) else value
        for c in choices:
            if c.lower() == text:
                return c
        raise SettingError(field_name, value, tuple(choices))

    return FieldType(field_name, parse, "|".join(choices))


# --- click's own usage errors, in the catalogue's words ------------------------------------------------------


def option_list(names: Sequence[str]) -> str:
    return t("cli.list_separator").join(names)


@contextmanager
def _in_context(ctx: click.Context) -> Iterator[None]:
    """click's parser raises some usage errors (an option without its value...) without the context; give it, so
    that the message can name what the command allows."""
    try:
        yield
    except click.UsageError as error:
        if error.ctx is None:
            error.ctx = ctx
        raise


class Command(click.Command):
    """A command whose extra arguments are refused in the catalogue's words, naming what the command takes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        extra_allowed = ctx.allow_extra_args
        refuse_extra = not extra_allowed and not ctx.resilient_parsing
        ctx.allow_extra_args = True  # let click parse; what is left over is refused below
        try:
            with _in_context(ctx):
                rest = super().parse_args(ctx, args)
        finally:
            ctx.allow_extra_args = extra_allowed
        if rest and refuse_extra:
            usage = " ".join([ctx.command_path, *self.collect_usage_pieces(ctx)])
            raise LineUsageError(t("cli.error.extra_arguments", arguments=" ".join(rest), usage=usage), ctx)
        return rest


class Group(click.Group):
    """A group that names its commands when asked for one it does not have."""

    command_class = Command
    group_class = type  # click: subgroups are of this class too

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _in_context(ctx):
            return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if not name.startswith("-") and self.get_command(ctx, name) is None and not ctx.resilient_parsing:
            allowed = option_list(self.list_commands(ctx))
            raise LineUsageError(t("cli.error.no_such_command", command=name, allowed=allowed), ctx)
        return super().resolve_command(ctx, args)


class CatalogueType(_ParamType):
    """Mixed into click's own Path, Choice and number types (see ``localise``): a refused value gets the
    catalogue's one line (the option, the value, what is wrong, what is allowed) instead of click's English.
    Everything else (help, metavar, ranges shown in --help) stays click's."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            field = (param.opts[0] if isinstance(param, click.Option) else (param.name or "").upper()) if param else ""
            message = t("cli.error.value_problem", field=field, value=value, problem=self._problem(value),
                        allowed=self.allowed())
            raise ValueUsageError(message, ctx, param) from None

    def _problem(self, value: Any) -> str:
        """What is wrong with ``value``, in words."""
        if isinstance(self, click.Path):
            return _path_problem(self, value)
        if isinstance(self, click.types.IntParamType | click.types.FloatParamType):
            try:
                float(value)
            except (TypeError, ValueError):
                return t("problem.not_number")
            return t("problem.out_of_range")
        return t("problem.not_allowed")

    def allowed(self) -> str:
        """What the type allows, in words."""
        if isinstance(self, click.Path):
            kind = "file" if not self.dir_okay else "dir" if not self.file_okay else "any"
            return t(f"allowed.path.{kind}{'_existing' if self.exists else ''}")
        if isinstance(self, click.Choice):
            return ", ".join(map(str, self.choices))
        if isinstance(self, click.IntRange | click.FloatRange):
            low = "-∞" if self.min is None else str(self.min)
            return t("allowed.number_range", low=low, high="∞" if self.max is None else str(self.max))
        if isinstance(self, click.types.IntParamType | click.types.FloatParamType):
            return t("allowed.number")
        return self.name.upper()


_IN_CATALOGUE: dict[type, type] = {}


def in_catalogue(kind: _ParamType) -> _ParamType:
    """A copy of a click type whose refusals come from the catalogue (its class with ``CatalogueType`` mixed in)."""
    cls = type(kind)
    if cls not in _IN_CATALOGUE:
        _IN_CATALOGUE[cls] = type(cls.__name__, (CatalogueType, cls), {})
    localised = copy.copy(kind)  # click.INT and friends are shared: leave the originals alone
    localised.__class__ = _IN_CATALOGUE[cls]
    return localised


def _path_problem(path: click.Path, value: Any) -> str:
    try:
        st = os.stat(os.fsdecode(value))
    except OSError:
        return t("problem.not_found")
    if stat.S_ISDIR(st.st_mode) and not path.dir_okay:
        return t("problem.is_directory")
    if not stat.S_ISDIR(st.st_mode) and not path.file_okay:
        return t("problem.is_file")
    return t("problem.no_access")


def localise(command: click.Command) -> None:
    """Makes click's own usage errors under ``command`` come from the catalogue: plain click commands and groups
    (some are written in modules that do not import this one) take the classes above, which add nothing but the
    wording, and click's Path, Choice and number types become ``in_catalogue`` copies."""
    if type(command) is click.Command:
        command.__class__ = Command
    elif type(command) is click.Group:
        command.__class__ = Group
    for param in command.params:
        kind = param.type
        clicks_own = isinstance(kind, click.Path | click.Choice | click.types.IntParamType | click.types.FloatParamType)
        if clicks_own and not isinstance(kind, CatalogueType):
            param.type = in_catalogue(kind)
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            localise(sub)
