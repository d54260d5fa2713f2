"""Telling our own disk's refusals from everything else.

A write into the spool can fail because the spool's file system is full (ENOSPC), the user is
over a disk quota (EDQUOT) or the file system is read-only (EROFS); SQLite says the same as
"database or disk is full" or "attempt to write a readonly database". None of that is an
entry's fault and none of it lasts: the agent keeps every entry where it is, waits, and goes on
when the disk takes writes again. :func:`refusal` names such an error in one line (what is wrong
and what to do); :func:`check` looks at the file system itself, for ``hookagent status``.
"""
from __future__ import annotations

import errno
import os
import sqlite3

FULL = (errno.ENOSPC, errno.EDQUOT)
READ_ONLY = (errno.EROFS,)
_SQLITE_FULL, _SQLITE_READONLY, _SQLITE_IOERR = 13, 8, 10   # primary result codes


def refusal(exc: BaseException, spool_dir: str) -> str | None:
    """One line saying that the spool's own disk refused a write, and what to do; None when
    ``exc`` is something else (a bug, a missing file, a permission)."""
    if isinstance(exc, OSError):
        if exc.errno in FULL or exc.errno in READ_ONLY:
            return _say(spool_dir, exc.errno, exc.strerror or os.strerror(exc.errno))
        return None
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)   # Python 3.11+; the text before that
        code = code & 0xFF if code is not None else None
        text = str(exc)
        if code == _SQLITE_FULL or "database or disk is full" in text:
            return _say(spool_dir, errno.ENOSPC, f"the ledger: {text}")
        if code == _SQLITE_READONLY or "readonly database" in text:
            return _say(spool_dir, errno.EROFS, f"the ledger: {text}")
        if code == _SQLITE_IOERR or "disk I/O error" in text:
            return check(spool_dir)   # SQLite does not say why: the file system may
    return None


def check(spool_dir: str) -> str | None:
    """One line when the spool's file system is read-only or has no room left now; else None."""
    try:
        st = os.statvfs(spool_dir)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return _say(spool_dir, errno.EROFS, "mounted read-only")
    if st.f_bavail == 0 or (st.f_files and st.f_favail == 0):
        return _say(spool_dir, errno.ENOSPC, "no free blocks" if st.f_bavail == 0 else "no free inodes")
    return None


def _say(spool_dir: str, code: int, detail: str) -> str:
    if code in READ_ONLY:
        what, fix = "its file system is read-only", "make it writable again (mount -o remount,rw)"
    elif code == errno.EDQUOT:
        what, fix = "over the disk quota", "free space or raise the quota of the user the agent runs as"
    else:
        what, fix = "its file system is full", "free space in the file system it is on"
    return (f"cannot write the spool {spool_dir} ({detail}): {what}; {fix}. Queued entries are"
            " kept and go out by themselves once the disk takes writes again")
