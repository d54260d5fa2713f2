"""One module per command: ``configure(parser)`` adds its arguments, ``run(args) -> int`` does
the work and raises :class:`hookagent.errors.HookagentError` (never prints an error and returns 2:
:func:`hookagent.main.main` owns the exit codes). What several commands share is here (the
--config option; install's and uninstall's --hooks-dir and --global); commands do not import
each other.
"""
from __future__ import annotations

import argparse

CONFIG_HELP = ("configuration file (default: $HOOKAGENT_CONFIG, else"
               " ~/.config/hookagent/config.yaml, else /etc/hookagent/config.yaml)")


def add_config_option(parser: argparse.ArgumentParser, help: str = CONFIG_HELP) -> None:  # noqa: A002
    """``--config FILE``, the same for every command that reads the configuration."""
    parser.add_argument("--config", metavar="FILE", help=help)


def add_place_options(p: argparse.ArgumentParser, verb: str) -> None:
    """``--hooks-dir DIR`` and ``--global``, the same for install and uninstall (hookagent.layouts)."""
    p.add_argument("--hooks-dir", metavar="DIR",
                   help=f"{verb} in this folder of hooks, for every repository that runs it, instead of a"
                        " repository's: GitLab's global custom_hooks_dir (give DIR/post-receive.d), gitolite's"
                        " LOCAL_CODE hooks. DIR named NAME.d: ours is DIR/hookagent;"
                        " DIR holding NAME.d/: DIR/NAME.d/hookagent; else DIR/NAME")
    p.add_argument("--global", action="store_true", dest="global_",
                   help=f"{verb} in the hooks folder a global or system core.hooksPath names (its hooks run in"
                        " every repository of the user or machine); refused without this flag")
