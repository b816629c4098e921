"""Option and argument types: every value goes through the model's own parser, and a value it refuses becomes a
usage error (exit 2) with the one-line, translated message that names the field and the allowed values."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
            problem=t(f"problem.{error.problem}"),
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
