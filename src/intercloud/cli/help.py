"""Help text without typer's placeholders.

Recent typer renders a required argument as ``{spec}`` in the usage line and types as
``<int range> [x>=1]`` or ``<bool>`` in the help panels. ``PlainCommand`` (pass it as
``cls=`` to ``app.command``) gives every parameter of its command the classic spelling
instead: ``SPEC`` / ``[JOB]`` in the usage line, ``INTEGER``, ``PATH``, ``TEXT`` for
values (or the parameter's own metavar) and nothing for flags. Ranges are stated in the
parameter's help text where they matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_TYPE_WORDS = {int: "INTEGER", float: "NUMBER", str: "TEXT", Path: "PATH", bool: ""}


def _type_word(param: Any) -> str | None:
    if getattr(param, "metavar", None) is not None:
        return str(param.metavar)
    if getattr(param, "is_flag", False):
        return None
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    for kind, word in _TYPE_WORDS.items():
        if annotation is kind or (isinstance(annotation, type) and issubclass(annotation, kind)):
            return word or None
    return "VALUE"


class _PlainArgument(TyperArgument):
    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = str(self.metavar or self.name or "ARG").upper()
        return [name if self.required else f"[{name}]"]

    def display_type_rich(self, ctx: Any) -> str | None:
        return _type_word(self)

    def _get_number_range_help_str(self) -> str | None:
        return None


class _PlainOption(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        return _type_word(self)

    def _get_number_range_help_str(self) -> str | None:
        return None


def _plain(params: list[Any]) -> list[Any]:
    for param in params:
        # Same object, a subclass that only changes how it is displayed.
        if type(param) is TyperArgument:
            param.__class__ = _PlainArgument
        elif type(param) is TyperOption:
            param.__class__ = _PlainOption
    return params


class PlainCommand(TyperCommand):
    """A typer command whose help uses classic placeholders (see the module docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))


class PlainGroup(TyperGroup):
    """A typer group whose help, and that of every command and group under it, uses
    classic placeholders (see the module docstring). Give it as ``cls=`` to the root
    ``typer.Typer``: commands added later with a plain ``app.command()`` are covered."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain(super().get_params(ctx))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if type(command) is TyperCommand:
            command.__class__ = PlainCommand
        elif type(command) is TyperGroup:
            command.__class__ = PlainGroup
        return command
