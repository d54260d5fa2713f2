"""`hookagent hook NAME -- ARGS`: the Python hooks' entry. Never fails, never waits.

Anything that goes wrong becomes one line on stderr and exit status 0: a post hook cannot undo a
commit or a push, and a tracker being down must never be a developer's problem at commit time.
svn post-commit is the exception (status REPORTED, which the rendered hook turns into exit 1):
svn shows a post-commit's stderr only when it exits non-zero, as a warning after "Committed
revision N."; the commit stands.
"""
from __future__ import annotations

import os
import sys

HOOKS = ("post-commit", "post-receive", "post-revprop-change")

REPORTED = 3
"""Exit status of a run that printed its one line about a problem (see resources/hook-tmpl)."""


def run(name: str, config: str | None, argv: list[str], vcs: str | None = None) -> int:
    if vcs is None:      # a hook of the previous version: svn's post-commit has REPOS REV [TXN]
        vcs = "svn" if name == "post-revprop-change" or (name == "post-commit" and argv) else "git"
    svn_commit = vcs == "svn" and name == "post-commit"
    try:
        from hookagent import config as config_mod
        from hookagent.spool import Spool
        cfg = config_mod.load(config)
        spool = Spool(cfg.spool_dir, cfg.spool_group)
        if svn_commit:
            from hookagent.hook.svn import post_commit as handler
        elif name == "post-revprop-change":
            from hookagent.hook.svn import post_revprop_change as handler
        elif name == "post-receive":
            from hookagent.hook.git import post_receive as handler
        else:
            from hookagent.hook.git import post_commit as handler
        queued = handler(cfg, spool, argv)
    except OSError as exc:  # full disk, read-only spool, permissions
        where = f" ({exc.filename})" if exc.filename else ""
        _lost(name, f"{exc.strerror}{where}")
    except Exception as exc:  # the hook path never fails a commit
        _lost(name, _one_line(exc))
    else:
        if not (queued and cfg.agent.autostart):
            return 0
        try:
            from hookagent.agent import lifetime
            lifetime.start(cfg)
            return 0
        except Exception as exc:   # recorded; only the delivery waits
            print(f"hookagent: {name}: recorded, but could not start the agent"
                  f" ({_one_line(exc)}); run `hookagent flush` to deliver", file=sys.stderr)
    # Not for post-revprop-change: svn would make `svn propset` itself fail (the edit stands).
    return REPORTED if svn_commit else 0


def prepare_spool(name: str, config: str, spool_dir: str, repo: str) -> int:
    """Make the spool the sh hook was installed with, on its first use: 0, or 1 and one line."""
    try:
        from hookagent import config as config_mod
        from hookagent.spool import Spool
        cfg = config_mod.load(config or None)
        if os.path.abspath(cfg.spool_dir) != os.path.abspath(spool_dir):
            raise ValueError(f"the configuration names spool_dir {cfg.spool_dir}, the hook was installed"
                             f" with {spool_dir}; run hookagent install {repo} again")
        Spool(cfg.spool_dir, cfg.spool_group)
    except OSError as exc:
        _lost(name, exc.strerror or str(exc), repo)
        return 1
    except Exception as exc:
        _lost(name, _one_line(exc), repo)
        return 1
    return 0


def _lost(name: str, why: str, repo: str | None = None) -> None:
    repo = repo or os.getcwd()
    print(f"hookagent: {name}: could not record the commit: {why};"
          f" the commit itself is fine; once fixed, `hookagent backfill {repo}` sends what was missed",
          file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
