"""What was sent where: the memory that makes each commit reach each destination once.

A SQLite database in the spool (WAL mode, so hooks' backfills and several agents can share it).
Keys are (destination, commit ident). States: ``queued`` (backfill put it in the spool) and
``sent`` (the server answered 2xx). Not on the hook path.
"""
from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable

SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    dest   TEXT NOT NULL,
    ident  TEXT NOT NULL,
    state  TEXT NOT NULL,
    at     REAL NOT NULL,
    PRIMARY KEY (dest, ident)
) WITHOUT ROWID;
"""


class Ledger:
    def __init__(self, path: str, file_mode: int = 0o600) -> None:
        self.path = path
        if not os.path.exists(path):
            # Create it ourselves so the mode is right; SQLite gives -wal/-shm the same mode.
            try:
                os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, file_mode))
            except FileExistsError:
                pass
        self.db = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=30000")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def is_sent(self, dest: str, ident: str) -> bool:
        row = self.db.execute("SELECT 1 FROM ledger WHERE dest=? AND ident=? AND state='sent'",
                              (dest, ident)).fetchone()
        return row is not None

    def mark_sent(self, dest: str, ident: str, now: float | None = None) -> None:
        self.db.execute("INSERT OR REPLACE INTO ledger (dest, ident, state, at) VALUES (?, ?, 'sent', ?)",
                        (dest, ident, time.time() if now is None else now))

    def known(self, dest: str, idents: Iterable[str]) -> set[str]:
        """Which of these idents are already queued or sent for dest."""
        idents = list(idents)
        found: set[str] = set()
        for i in range(0, len(idents), 500):
            chunk = idents[i:i + 500]
            q = f"SELECT ident FROM ledger WHERE dest=? AND ident IN ({','.join('?' * len(chunk))})"
            found.update(r[0] for r in self.db.execute(q, [dest, *chunk]))
        return found

    def mark_queued(self, dest: str, idents: Iterable[str], now: float | None = None) -> None:
        now = time.time() if now is None else now
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR IGNORE INTO ledger (dest, ident, state, at) VALUES (?, ?, 'queued', ?)",
                                ((dest, i, now) for i in idents))

    def count(self, dest: str | None = None, state: str = "sent") -> int:
        if dest is None:
            return self.db.execute("SELECT count(*) FROM ledger WHERE state=?", (state,)).fetchone()[0]
        return self.db.execute("SELECT count(*) FROM ledger WHERE dest=? AND state=?", (dest, state)).fetchone()[0]
