"""The ``switchy`` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import click

from switchy.errors import ConnectError
from switchy.esl.connection import DEFAULT_PASSWORD, DEFAULT_PORT, connect


def parse_contact(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` -> (host, port); the port defaults to 8021."""
    host, colon, port = text.rpartition(":")
    if not colon:
        host, port = text, str(DEFAULT_PORT)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [IPv6]:port
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{text!r} is not HOST[:PORT]")
    return host, int(port)


def _contacts(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> list[tuple[str, int]]:
    return [parse_contact(value) for value in values]


@click.group()
@click.version_option(package_name="switchy")
def main() -> None:
    """switchy: FreeSWITCH control and call-load generation."""


@main.command()
@click.argument("contacts", nargs=-1, callback=_contacts, metavar="[HOST[:PORT]]...")
@click.option(
    "--password",
    envvar="SWITCHY_PASSWORD",
    default=DEFAULT_PASSWORD,
    show_default=True,
    help="Event socket password (or SWITCHY_PASSWORD).",
)
def run(contacts: Sequence[tuple[str, int]], password: str) -> None:
    """Connect to each FreeSWITCH (HOST[:PORT]) and print its status.

    With no HOST, a local simulated FreeSWITCH is started and used.
    """
    try:
        asyncio.run(_print_status(list(contacts), password))
    except ConnectError as exc:
        click.echo(f"switchy: {exc}", err=True)
        sys.exit(2)


async def _print_status(contacts: list[tuple[str, int]], password: str) -> None:
    if contacts:
        for host, port in contacts:
            await _status_of(host, port, password)
        return
    from switchy.sim.cluster import Cluster

    async with Cluster(1, password=password) as cluster:
        member = cluster.nodes[0]
        click.echo(f"simulated FreeSWITCH at {member.esl_host}:{member.esl_port}")
        await _status_of(member.esl_host, member.esl_port, password)


async def _status_of(host: str, port: int, password: str) -> None:
    connection = await connect(host, port, password)
    try:
        click.echo(f"{host}:{port}:")
        click.echo(await connection.api("status"))
    finally:
        await connection.close()


@main.command("list-apps")
@click.option(
    "--package",
    "packages",
    multiple=True,
    metavar="MODULE",
    help="Also import apps registered in this module or package (repeatable).",
)
def list_apps(packages: Sequence[str]) -> None:
    """List the call apps switchy knows, with their descriptions."""
    import inspect

    import switchy.apps

    try:
        switchy.apps.load(packages)
    except ImportError as exc:
        raise click.BadParameter(str(exc), param_hint="--package") from None
    for module, apps in switchy.apps.groupbymod().items():
        click.secho(module, bold=True)
        for name, app in apps:
            doc = inspect.getdoc(app) or "(no description)"
            click.echo(f"  {name}")
            for line in doc.splitlines():
                click.echo(f"      {line}".rstrip())
