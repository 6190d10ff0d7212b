"""The `portal` command: a thin client of the portal's REST API.

Configuration comes from the environment, never from argv, so secrets stay out of shell
history and `ps`: PORTAL_URL (default http://127.0.0.1:8000), PORTAL_API_TOKEN,
PORTAL_OUTPUT (table or json) and PORTAL_TIMEOUT (seconds).
"""

from __future__ import annotations

from typing import Any

import click

from portal_cli import __version__
from portal_cli.client import PortalError
from portal_cli.commands import airgap, apps, audit, domains, images, licenses, registries, releases, team, tokens
from portal_cli.context import CliError, State, common_options


class PortalGroup(click.Group):
    """Turns any client failure into `error: <reason>` and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PortalError as e:
            raise CliError(e.message) from None


@click.group(cls=PortalGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="portal")
@common_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Manage your vendor portal team from the shell.

    Set PORTAL_URL and PORTAL_API_TOKEN; add --output json to any command for the API's objects.
    """
    ctx.ensure_object(State)


cli.add_command(apps.app)
cli.add_command(tokens.token)
cli.add_command(registries.registry)
cli.add_command(images.image)
cli.add_command(licenses.license_group)
cli.add_command(releases.release)
cli.add_command(releases.channel)
cli.add_command(airgap.airgap)
cli.add_command(team.whoami)
cli.add_command(audit.audit)
cli.add_command(domains.domain)
cli.add_command(airgap.airgap)


def main() -> None:
    cli(prog_name="portal")


if __name__ == "__main__":
    main()
