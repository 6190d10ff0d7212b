"""`portal airgap`: air-gap bundles. The customer's commands (verify, push) live in
airgap_install.py."""

from __future__ import annotations

import click

from portal_cli.commands import airgap_install
from portal_cli.context import common_options


@click.group("airgap")
@common_options
def airgap() -> None:
    """Air-gap bundles: every image of a release in one verifiable file, for clusters without internet."""


airgap.add_command(airgap_install.verify)
airgap.add_command(airgap_install.push)
