"""Opening the things commands share: config, spool, ledger, sink, logging."""
from __future__ import annotations

import logging
import os
import re
import sys

from hookagent import config as config_mod
from hookagent.config import Config
from hookagent.errors import SpoolError, warn
from hookagent.ledger import Ledger
from hookagent.spool import Spool, UnsafeFile, open_log


def load_config(path: str | None) -> Config:
    return config_mod.load(path)


def open_spool(cfg: Config) -> Spool:
    return Spool(cfg.spool_dir, cfg.spool_group)


def ledger_path(spool: Spool) -> str:
    return os.path.join(spool.root, "ledger.sqlite3")


def open_ledger(spool: Spool, *, read_only_ok: bool = False) -> Ledger:
    """The ledger, for writing. A spool that cannot be written (a read-only file system, no
    space for SQLite's side files) is a SpoolError saying so, or, with ``read_only_ok`` (status),
    the ledger opened read-only when it exists."""
    import sqlite3

    from hookagent.errors import SpoolError
    path = ledger_path(spool)
    try:
        # The database and SQLite's two side files, made with the spool's mode and owner: with
        # spool_group, every user's agent must be able to write them.
        for name in (path, path + "-wal", path + "-shm"):
            spool.ensure_file(name)
        return Ledger(path, spool.file_mode)
    except UnsafeFile:
        raise
    except (OSError, sqlite3.OperationalError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        if read_only_ok and os.path.exists(path):
            return Ledger(path, read_only=True)
        raise SpoolError(f"cannot write the spool {spool.root} ({why}); make it writable (a read-only"
                         " or full file system?), or point spool_dir at a folder that is") from None


def make_sink(cfg: Config, stream=None):
    from hookagent.sinks import make_sink as factory
    t = cfg.tracker
    token = None if t.api == "stdout" else cfg.read_token()
    kwargs = {"timeout": t.timeout, "verify": t.ca_bundle or True}
    if t.api == "stdout" and stream is not None:
        kwargs["stream"] = stream
    if t.api == "github-push":
        kwargs.update(github_format=t.github.format, max_commits_per_request=t.github.max_commits_per_request)
    if t.api == "redmine":
        from hookagent.refsyntax import syntax_for
        kwargs["redmine"] = {"syntax": syntax_for(t), "statuses": dict(t.redmine.statuses),
                             "authors": dict(t.redmine.authors)}
    return factory(t.api, t.url, token, **kwargs)


class LogFile(logging.StreamHandler):
    """The agent's log file. A line the disk refuses (full, read-only) is dropped, said once on
    stderr and never raised: the log must not be what stops the queue."""

    def __init__(self, stream, path: str) -> None:
        super().__init__(stream)
        self.path = path
        self.failing = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.stream.write(self.format(record) + self.terminator)
            self.stream.flush()
        except OSError as exc:
            if not self.failing:
                warn(f"cannot write log {self.path} ({exc.strerror}); its lines are lost until it can be written")
            self.failing = True
        except Exception:
            self.handleError(record)
        else:
            self.failing = False


_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(m: re.Match) -> str:
    c = m.group()
    return _NAMED.get(c) or (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")


def one_line(text: str) -> str:
    """``text`` with its newlines and control characters written as escapes (``\\n``,
    ``\\x1b``; also Unicode's line separators and bidi overrides)."""
    return _CONTROLS.sub(_escaped, text)


class OneLineFormatter(logging.Formatter):
    """One record, one line: what a message quotes (a commit's author or message, a ref name, a
    server's answer, a traceback) can neither forge a log line nor drive a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record))


LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(message)s"
LOG_DATEFMT = "%Y-%m-%dT%H:%M:%S%z"


class JournalFormatter(OneLineFormatter):
    """A line for a stderr that journald reads: ``<N>`` (the syslog priority, which journald
    takes off and stores as PRIORITY=) and the message; journald adds the time and the pid."""

    def format(self, record: logging.LogRecord) -> str:
        from hookagent.systemd import priority
        return f"<{priority(record.levelno)}>{super().format(record)}"


class JournalHandler(logging.Handler):
    """Lines to the journal's own socket (systemd.JournalSocket), for an agent whose stderr is
    not the journal. Like LogFile, a line the journal refuses is dropped and said once."""

    def __init__(self, journal) -> None:
        super().__init__()
        self.journal = journal
        self.failing = False

    def emit(self, record: logging.LogRecord) -> None:
        from hookagent.systemd import priority
        try:
            self.journal.send(self.format(record), priority(record.levelno))
        except OSError as exc:
            if not self.failing:
                warn(f"cannot write to the journal {self.journal.path} ({exc.strerror}); its lines are lost"
                     " until it takes them")
            self.failing = True
        except Exception:
            self.handleError(record)
        else:
            self.failing = False

    def close(self) -> None:
        self.journal.close()
        super().close()


def log_destination(cfg: Config, command: str) -> str:
    """Where this process logs, one of config.LOG_CHOICES: ``agent.log`` when set; otherwise
    journald when our stderr is the journal (a systemd service), stderr for `hookagent run`
    elsewhere (a terminal, a container, another supervisor), the log file for the rest (a
    `hookagent flush`, the background agents the hooks start)."""
    from hookagent import systemd
    if cfg.agent.log:
        return cfg.agent.log
    if systemd.stderr_is_journal():
        return "journald"
    if command == "run" and not systemd.stderr_is_nowhere():
        return "stderr"
    return "file"


def setup_logging(cfg: Config, *, verbose: bool = False, command: str = "flush") -> str:
    """Send the ``hookagent`` loggers' lines to one place (log_destination), each line once;
    ``verbose``: debug lines too, and, when that place is the file, stderr as well. Every line
    goes through OneLineFormatter. Returns where the lines go: the log file's path, "stderr"
    or "journald"."""
    from hookagent import systemd
    root = logging.getLogger("hookagent")
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    fmt = OneLineFormatter(LOG_FORMAT, LOG_DATEFMT)
    where = log_destination(cfg, command)
    if where == "journald" and systemd.stderr_is_journal():
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JournalFormatter("%(message)s"))
        root.addHandler(handler)
        return "journald"
    if where == "journald":
        try:
            handler = JournalHandler(systemd.JournalSocket())
        except OSError as exc:
            warn(f"agent.log: journald: cannot reach the journal at {systemd.JOURNAL_SOCKET} ({exc.strerror});"
                 f" logging to {cfg.log_file}")
            where = "file"
        else:
            handler.setFormatter(OneLineFormatter("%(message)s"))
            root.addHandler(handler)
            return "journald"
    if where == "stderr" and not systemd.stderr_is_nowhere():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(fmt)
        root.addHandler(handler)
        return "stderr"
    # The file: asked for, or nobody reads our stderr (a hook's background agent, 2>/dev/null).
    to_stderr = verbose
    try:
        fd = open_log(cfg.log_file, cfg.spool_dir, cfg.spool_group)
        handler = LogFile(os.fdopen(fd, "a", encoding="utf-8", buffering=1), cfg.log_file)
        handler.setFormatter(fmt)
        root.addHandler(handler)
        where = cfg.log_file
    except UnsafeFile as exc:
        warn(f"cannot write log: {exc}; logging to stderr")
        to_stderr, where = True, "stderr"
    except (OSError, SpoolError) as exc:
        warn(f"cannot write log {cfg.log_file} ({getattr(exc, 'strerror', None) or exc}); logging to stderr")
        to_stderr, where = True, "stderr"
    if to_stderr:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(fmt)
        root.addHandler(h)
    return where
