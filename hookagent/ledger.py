"""What was sent where: the memory that makes each commit reach each destination once.

A SQLite database in the spool (WAL mode, so hooks' backfills and several agents can share it).
Keys are (destination, commit ident). States: ``queued`` (backfill put it in the spool) and
``sent`` (the server answered 2xx). Not on the hook path.

Layout (``PRAGMA user_version`` 2): destinations are numbered once in ``dests``, and ``commits``
is keyed by (destination number, ident), so a row costs about 60 bytes instead of repeating the
destination URL, and a backfill of 66,000 commits writes its marks in well under a second.
A version-1 database (one ``ledger`` table keyed by the destination text) is migrated on open.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable

VERSION = 3   # 3: the changes table (changes.py), made by _create on open
SCHEMA = """
CREATE TABLE IF NOT EXISTS dests (
    id     INTEGER PRIMARY KEY,
    dest   TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS commits (
    dest   INTEGER NOT NULL,
    ident  TEXT NOT NULL,
    state  TEXT NOT NULL,
    at     REAL NOT NULL,
    PRIMARY KEY (dest, ident)
) WITHOUT ROWID;
"""
CHUNK = 500   # parameters per IN (...) query: below every SQLite build's variable limit


class Ledger:
    def __init__(self, path: str, file_mode: int = 0o600, *, read_only: bool = False) -> None:
        """``read_only``: the ledger of a spool that cannot be written, for reading (status)."""
        self.path = path
        self._ids: dict[str, int] = {}
        self.writable = not read_only
        from urllib.parse import quote
        if read_only:
            self.db = sqlite3.connect(f"file:{quote(path)}?immutable=1", uri=True, isolation_level=None,
                                      check_same_thread=False)
            return
        if not os.path.exists(path):
            # Create it ourselves so the mode is right; SQLite gives -wal/-shm the same mode.
            try:
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, file_mode))
            except FileExistsError:
                pass
        # mode=rw: SQLite never creates the file (through a symlink swapped in meanwhile)
        self.db = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=30.0, isolation_level=None,
                                  check_same_thread=False)
        self._check_opened(path)
        self.db.execute("PRAGMA busy_timeout=30000")
        self._wal()
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-65536")   # 64 MB: a backfill's random-key inserts stay in memory
        if self.db.execute("PRAGMA user_version").fetchone()[0] != VERSION:
            self._create()

    def _check_opened(self, path: str) -> None:
        """Before the first write: the file SQLite opened is the ledger itself. SQLite opens the
        database by path, following a symlink (its -wal and -shm it opens with O_NOFOLLOW); in a
        group-shared spool a member may swap one in after the spool checked the file. SQLite
        names the file it resolved."""
        from hookagent.errors import SpoolError
        opened = next((row[2] for row in self.db.execute("PRAGMA database_list") if row[1] == "main"), "")
        real = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
        if opened and opened != real:
            self.db.close()
            raise SpoolError(f"{path} is a symlink to {opened}, not the spool's ledger; refusing it: remove it"
                             " (someone who can write to the spool put it there)")

    def _wal(self) -> None:
        """Switch to WAL. SQLite answers "database is locked" at once (no busy handler) when
        another process is switching a new database at the same moment: wait and try again."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _create(self) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("PRAGMA user_version").fetchone()[0] == VERSION:
                return   # another process got there first
            from hookagent.changes import SCHEMA as CHANGES
            for stmt in (SCHEMA + CHANGES).split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            old = self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='ledger'").fetchone()
            if old:   # version 1: (dest TEXT, ident, state, at)
                self.db.execute("INSERT OR IGNORE INTO dests (dest) SELECT DISTINCT dest FROM ledger")
                self.db.execute("INSERT OR REPLACE INTO commits (dest, ident, state, at)"
                                " SELECT d.id, l.ident, l.state, l.at FROM ledger l JOIN dests d ON d.dest = l.dest")
                self.db.execute("DROP TABLE ledger")
            self.db.execute(f"PRAGMA user_version={VERSION}")

    def close(self) -> None:
        self.db.close()

    def _dest_id(self, dest: str, create: bool) -> int | None:
        did = self._ids.get(dest)
        if did is not None:
            return did
        row = self.db.execute("SELECT id FROM dests WHERE dest=?", (dest,)).fetchone()
        if row is None:
            if not create:
                return None
            self.db.execute("INSERT OR IGNORE INTO dests (dest) VALUES (?)", (dest,))
            row = self.db.execute("SELECT id FROM dests WHERE dest=?", (dest,)).fetchone()
        self._ids[dest] = row[0]
        return row[0]

    def changes(self, dest: str, grammar=None):
        """The changes each story of ``dest`` heard of (changes.Changes); ``grammar``: the
        destination's (refsyntax.py), Tracker's by default."""
        from hookagent.changes import Changes
        return Changes(self.db, lambda create: self._dest_id(dest, create), grammar=grammar)

    def mark_replaced(self, dest: str, ident: str) -> None:
        """A commit not sent because later commits of its change told its stories."""
        did = self._dest_id(dest, create=True)
        self.db.execute("INSERT OR REPLACE INTO commits (dest, ident, state, at) VALUES (?, ?, 'replaced', ?)",
                        (did, ident, time.time()))

    def is_sent(self, dest: str, ident: str) -> bool:
        did = self._dest_id(dest, create=False)
        if did is None:
            return False
        row = self.db.execute("SELECT 1 FROM commits WHERE dest=? AND ident=? AND state='sent'",
                              (did, ident)).fetchone()
        return row is not None

    def mark_sent(self, dest: str, ident: str, now: float | None = None) -> None:
        did = self._dest_id(dest, create=True)
        self.db.execute("INSERT OR REPLACE INTO commits (dest, ident, state, at) VALUES (?, ?, 'sent', ?)",
                        (did, ident, time.time() if now is None else now))

    def known(self, dest: str, idents: Iterable[str]) -> set[str]:
        """Which of these idents are already queued or sent for dest."""
        did = self._dest_id(dest, create=False)
        if did is None:
            return set()
        idents = list(idents)
        found: set[str] = set()
        for i in range(0, len(idents), CHUNK):
            chunk = idents[i:i + CHUNK]
            q = f"SELECT ident FROM commits WHERE dest=? AND ident IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in self.db.execute(q, [did, *chunk]))
        return found

    def mark_queued(self, dest: str, idents: Iterable[str], now: float | None = None) -> None:
        """Remember idents as queued (one transaction); a commit already sent stays sent."""
        now = time.time() if now is None else now
        did = self._dest_id(dest, create=True)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO commits (dest, ident, state, at) VALUES (?, ?, 'queued', ?)",
                                ((did, i, now) for i in idents))

    def count(self, dest: str | None = None, state: str = "sent") -> int:
        if dest is None:
            return self.db.execute("SELECT count(*) FROM commits WHERE state=?", (state,)).fetchone()[0]
        did = self._dest_id(dest, create=False)
        if did is None:
            return 0
        return self.db.execute("SELECT count(*) FROM commits WHERE dest=? AND state=?", (did, state)).fetchone()[0]

    def sent_since(self, dest: str, since: float) -> int:
        """Commits marked sent for dest at ``since`` or later (status: the throughput)."""
        did = self._dest_id(dest, create=False)
        if did is None:
            return 0
        return self.db.execute("SELECT count(*) FROM commits WHERE dest=? AND state='sent' AND at >= ?",
                               (did, since)).fetchone()[0]
