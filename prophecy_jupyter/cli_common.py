"""What the command groups of `prophecy` share: the ``--format`` option, JSON output,
stacked options and the one-line error report.

The groups (`cli_automate`, `cli_git`, `cli_ai`) are registered by `prophecy_jupyter.cli`
at its end, so they reach into it only when a command runs, never at import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from prophecy_jupyter.cli import Context

F = TypeVar("F", bound=Callable[..., Any])

json_format = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)


def reported(ctx: Context) -> AbstractContextManager[None]:
    """The CLI's `reported`: typed errors as one line and exit code 1."""
    from prophecy_jupyter.cli import reported as cli_reported

    return cli_reported(ctx)


def with_options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Several click decorators as one, applied in the order they are listed."""

    def apply(command: F) -> F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))
