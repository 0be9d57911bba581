"""``ioc-center``: the central side's command line (a thin layer over ``ioc``).

One module per command group (``ca``, ``warn``, ``track`` ...); what they share (the ``--db`` and
``--ca`` options, who runs a command, how times print) is in ``ioc.cli.shared``.
"""

from __future__ import annotations

import click

from common.clikit import ExtraGroup, log_level_option
from common.logs import setup_logging
from ioc.cli import audit, broker, ca, commands, config, demo, device, nodes, records, run, track, users, warn

IOC_EXTRA = ("fastapi", "starlette", "uvicorn", "argon2", "psycopg")
"""The top-level modules of setup.cfg's ``ioc`` extra (the dashboard, its users, PostgreSQL): a device
installs ioc-edge without it, so they are imported only inside the commands that need them."""

COMMANDS = [
    run.run,
    run.serve,
    records.dump,
    records.rejects,
    demo.demo,
    users.user,
    users.token,
    commands.command_group,
    config.config_group,
    nodes.node,
    audit.audit_group,
    warn.warn_group,
    ca.ca,
    device.device,
    broker.broker_config,
    broker.broker,
    track.track,
]
"""Every command and group of ``ioc-center`` (``--help`` lists them by name)."""


@click.group(cls=ExtraGroup, distribution="ioc-edge", extra="ioc", modules=IOC_EXTRA, commands=COMMANDS)
@log_level_option
def main(log_level: str) -> None:
    """The IOC's receiver and tools.

    Example: ioc-center run --mqtt-port 1883 --db sqlite:///ioc.db
    """
    setup_logging(log_level)
