"""One module per command: ``configure(parser)`` adds its arguments, ``run(args) -> int`` does
the work and raises :class:`hookagent.errors.HookagentError` (never prints an error and returns 2:
:func:`hookagent.main.main` owns the exit codes). What several commands share is here; commands
do not import each other.
"""
from __future__ import annotations

import argparse

CONFIG_HELP = ("configuration file (default: $HOOKAGENT_CONFIG, else"
               " ~/.config/hookagent/config.yaml, else /etc/hookagent/config.yaml)")


def add_config_option(parser: argparse.ArgumentParser, help: str = CONFIG_HELP) -> None:  # noqa: A002
    """``--config FILE``, the same for every command that reads the configuration."""
    parser.add_argument("--config", metavar="FILE", help=help)
