"""Command-line options shared by switchy's commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO, TypeVar

import click

from switchy.esl.connection import DEFAULT_PASSWORD

Command = TypeVar("Command", bound=Callable[..., object])


def password_options(command: Command) -> Command:
    """``--password`` (or ``SWITCHY_PASSWORD``) and ``--password-file``; the command
    gets both and picks with :func:`chosen_password`."""
    command = click.option(
        "--password-file", type=click.File("r"), help="Read the event socket password from a file."
    )(command)
    return click.option(
        "--password",
        envvar="SWITCHY_PASSWORD",
        default=DEFAULT_PASSWORD,
        help="Event socket password. Prefer SWITCHY_PASSWORD or --password-file: "
        "command lines are visible to every user.",
    )(command)


def chosen_password(password: str, password_file: TextIO | None) -> str:
    """The file's password (its first and only line) if one was given, else ``password``."""
    return password if password_file is None else password_file.read().strip()
