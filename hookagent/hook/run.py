"""`hookagent hook NAME -- ARGS`: the Python hooks' entry. Never fails, never waits.

Anything that goes wrong becomes one line on stderr and exit status 0: a post hook cannot undo a
commit or a push, and a tracker being down must never be a developer's problem at commit time.
svn post-commit is the exception (status REPORTED, which the rendered hook turns into exit 1):
svn shows a post-commit's stderr only when it exits non-zero, as a warning after "Committed
revision N."; the commit stands.
"""
from __future__ import annotations

import os
import re
import sys

HOOKS = ("post-commit", "post-rewrite", "post-merge", "post-receive", "post-revprop-change")

_HASH_DIGIT = re.compile(rb"#[0-9]")

REPORTED = 3
"""Exit status of a run that printed its one line about a problem (see resources/hook-tmpl)."""


def run(name: str, config: str | None, argv: list[str], vcs: str | None = None) -> int:
    if vcs is None:      # a hook of the previous version: svn's post-commit has REPOS REV [TXN]
        vcs = "svn" if name == "post-revprop-change" or (name == "post-commit" and argv) else "git"
    svn_commit = vcs == "svn" and name == "post-commit"
    if vcs == "git" and name == "post-merge" and argv[:1] == ["1"]:
        return 0     # a squash merge made no commit (the commit that follows runs post-commit)
    if vcs == "git" and name in ("post-commit", "post-merge") and not head_may_reference(config):
        return 0     # as the sh hook: no configuration read, no spool touched, no agent
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
        elif name == "post-merge":
            from hookagent.hook.git import post_merge as handler
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


def may_reference(raw: bytes) -> bool:
    """The sh hook's quick test (its `case` pattern), on a raw commit: a `[`, then `#` and a
    digit, then `]`. False means no reference can be there; True, that the agent decides."""
    start = raw.find(b"[")
    if start < 0:
        return False
    digit = _HASH_DIGIT.search(raw, start + 1)
    return digit is not None and raw.find(b"]", digit.end()) >= 0


def head_may_reference(config: str | None = None) -> bool:
    """may_reference for HEAD's commit in the current repository (`hookagent hook post-commit`
    run from a hook manager's script, from PATH). True when git cannot say: the full path then
    says why in its one line. A commit with a ``#`` and a digit but no bracket group reads the
    configuration: its destination's syntax may be Redmine's (``refs #12``, refsyntax.py)."""
    from hookagent import process
    try:
        result = process.run(["git", "cat-file", "commit", "HEAD"], check=False, timeout=60)
    except Exception:        # git missing or hung: never fail the commit here
        return True
    if result.returncode != 0 or may_reference(result.stdout):
        return True
    if _HASH_DIGIT.search(result.stdout) is None:
        return False
    try:
        from hookagent import config as config_mod
        return config_mod.load(config).tracker.syntax != "tracker"
    except Exception:    # the full path says what is wrong with the configuration
        return True


def prepare(name: str, config: str | None, spool_dir: str, argv: list[str], vcs: str) -> int:
    """What the sh hook asks on a spool's first use and after each change of the configuration
    file: make the spool it was installed with, and check that the configuration still names it.
    0: record there (a stamp says the configuration agreed); REPORTED: one line was printed;
    RECORDED_ELSEWHERE: the configuration names another spool, and the commit was recorded there
    (with one line saying to install again)."""
    try:
        from hookagent import config as config_mod, inbox
        from hookagent.spool import Spool
        cfg = config_mod.load(config)
        if os.path.abspath(cfg.spool_dir) != os.path.abspath(spool_dir):
            if name == "post-rewrite":
                raise ValueError(f"the configuration names spool_dir {cfg.spool_dir}, the hook was installed"
                                 f" with {spool_dir}; run hookagent install again")
            if name == "post-receive":   # the sh hook has read stdin: it hands the push to `hook`
                print(f"hookagent: {name}: queued in {cfg.spool_dir}, the configuration's spool; the hook"
                      f" was installed with {spool_dir}: run hookagent install {_repo(argv, vcs)} again",
                      file=sys.stderr)
                return OTHER_SPOOL
            status = run(name, config, argv, vcs=vcs)
            if status == 0:
                print(f"hookagent: {name}: recorded in {cfg.spool_dir}, the configuration's spool; the hook"
                      f" was installed with {spool_dir}: run hookagent install {_repo(argv, vcs)} again",
                      file=sys.stderr)
            return RECORDED_ELSEWHERE if status == 0 else status
        spool = Spool(cfg.spool_dir, cfg.spool_group)
        if name == "post-receive":    # the sh hook gives the push on stdin when there is no snapshot
            from hookagent.hook import push
            push.seed_at_hook(spool, push.repository(os.getcwd()), list(cfg.branches), cfg.tags,
                              sys.stdin.read())
        fd = spool.open_file(spool.path("state", f"config-{inbox.agent_key(cfg.path)}.ok"), os.O_RDONLY)
        try:
            if cfg.path:    # the stamp's time is the file's: the hook asks again once the file is newer
                st = os.stat(cfg.path)
                os.utime(fd, ns=(st.st_mtime_ns, st.st_mtime_ns))   # the file checked, not a name
        finally:
            os.close(fd)
    except OSError as exc:
        _lost(name, exc.strerror or str(exc), _repo(argv, vcs))
        return REPORTED
    except Exception as exc:
        _lost(name, _one_line(exc), _repo(argv, vcs))
        return REPORTED
    return 0


RECORDED_ELSEWHERE = 4
"""prepare's status when it recorded the commit itself, in the configuration's spool."""

OTHER_SPOOL = 5
"""prepare's status for a push whose configuration names another spool: the sh hook, which has
read the push from stdin, gives it to `hookagent hook post-receive`."""


def _repo(argv: list[str], vcs: str) -> str:
    return argv[0] if vcs == "svn" and argv else os.getcwd()


def _lost(name: str, why: str, repo: str | None = None) -> None:
    repo = repo or os.getcwd()
    print(f"hookagent: {name}: could not record the commit: {why};"
          f" the commit itself is fine; once fixed, `hookagent backfill {repo}` sends what was missed",
          file=sys.stderr)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
