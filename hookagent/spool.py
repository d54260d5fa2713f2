"""The on-disk queue, and nothing else.

Layout (Maildir and Postfix habits)::

    spool_dir/
      inbox/      raw records the hooks wrote (see inbox.py); the agent turns them into entries
      tmp/        being written; never read by the agent
      new/        due now (sent by each entry's ``seq`` within a story: agent/order.py)
      deferred/   waiting for a retry; file mtime = due time (Postfix's trick), also inside the entry
      cur/        claimed by a live agent: ``NAME@AGENTID``; recovered when that agent's lock is free
      dead/       refused for good (kept with the server's answer; ``hookagent retry --dead``)
      corrupt/    unreadable entries, moved aside so they never stop the queue
      locks/      one flock-ed file per running agent; backfill-TAG.lock while a backfill queues
      state/      per-destination state (pause, hold, last error)

An entry is one JSON file: ``{"v": 1, "dest", "created", "attempts", "due", "last_error",
"seq", "stories", "commits": [...]}``; ``seq`` (its place in commit order, fixed at queue time)
and ``stories`` (every ``#N`` of its messages) decide when it may go (agent/order.py). Writes
go to tmp/, are fsynced, renamed into place and the directory is fsynced. A claim is a rename. Nothing is deleted before the agent says the server answered 2xx.

A shared spool is a hostile place: with ``spool_group`` every member may create, remove and
rename any name in it, and root may run a hook or an agent in a user's spool. So every file of
the spool is opened through :meth:`Spool.open`, which
- reaches it through the spool's real folders (the spool and its queue folder, each opened with
  O_NOFOLLOW | O_DIRECTORY), and opens it with O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC: a symlink is
  never followed, a FIFO never blocks;
- creates a missing file with O_EXCL (a name someone planted, even a dangling symlink, is
  refused, never followed), and gives only a file it has just created the spool's group and mode
  (and, when root creates it in someone else's spool, the spool's owner), with fchown/fchmod on
  the descriptor; it never chowns or chmods a file it did not create, nor anything by name. A
  shared file (a lock, the log, the ledger) is made in tmp/ and linked into place, so nobody
  sees it with the umask's mode or root as its owner;
- then checks, with fstat, that it holds a regular file owned by you, by the spool's owner, by
  root, or (with spool_group) by a member of the group; and a file it will write, that it has
  one link only (a hard link to someone's file is refused before it is written: O_TRUNC is done
  after the checks). A refusal is :class:`UnsafeFile`: one line naming the file, and what to do.
The folders hookagent makes are given their mode by descriptor too, and an existing queue folder
must be a real folder (not a symlink) with an owner that rule accepts.

What this cannot prevent, with spool_group: a member can delete, rename or forge any entry,
record, state or ledger row, and every member's agent sends what the entries say with its own
token (everything in the spool is theirs to write: trust the group as you trust its least
trustworthy member). A member who swaps a queue folder for a symlink while an agent runs can
make a rename or a folder listing go through it (those take paths; opens do not). SQLite opens
``ledger.sqlite3`` by path, following a symlink (its -wal and -shm it opens with O_NOFOLLOW
itself): the ledger is checked just before and the file SQLite opened just after (ledger.py),
and a hard link swapped in between gets through where the kernel lets anyone link others' files
(fs.protected_hardlinks=0). The sh hook tests a name before it reads or writes it (sh cannot
open without following or waiting): a member who swaps in a FIFO at that very moment can keep
that one commit waiting.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
import time
import zlib

from hookagent.errors import SpoolError

QUEUES = ("inbox", "tmp", "new", "cur", "deferred", "dead", "corrupt", "locks", "state")
ENTRY_VERSION = 1


def dest_tag(destination: str) -> str:
    return f"{zlib.crc32(destination.encode()):08x}"


def flush_lock_path(spool_dir: str, destination: str) -> str:
    """The lock a background flush for ``destination`` holds (one per destination and spool)."""
    return os.path.join(spool_dir, "locks", f"flush-{dest_tag(destination)}.lock")


def backfill_lock_path(spool_dir: str, destination: str) -> str:
    """The lock every running backfill for ``destination`` holds (shared) while it queues: its
    entries come newest first, so the agent sends none of them until it is free."""
    return os.path.join(spool_dir, "locks", f"backfill-{dest_tag(destination)}.lock")


def entry_for(name: str, tag: str | None) -> bool:
    """Whether entry ``name`` (``c-<tag>-...`` or ``b-<tag>-...``) is for destination ``tag``."""
    return tag is None or name[2:11] == tag + "-"


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:120]


def commit_entry_name(destination: str, ident: str) -> str:
    """Deterministic name for a one-commit entry: enqueueing the same commit twice is a no-op."""
    return f"c-{dest_tag(destination)}-{_safe(ident)}.json"


def push_entry_name(destination: str, record: str, part: int) -> str:
    """The name of part ``part`` of the push an inbox record holds: the same when read again."""
    return f"b-{dest_tag(destination)}-{_safe(record)}-{part}.json"


def batch_entry_name(destination: str) -> str:
    return f"b-{dest_tag(destination)}-{time.time_ns():020d}-{os.getpid()}-{os.urandom(4).hex()}.json"


_last_seq = 0


def next_seq() -> int:
    """The order of an entry queued now: nanoseconds of the clock, strictly increasing in this
    process (the agent sends a story's entries by ``seq``, see agent/order.py). Entries queued by
    several processes at once interleave by time, as their commits did."""
    global _last_seq
    _last_seq = max(time.time_ns(), _last_seq + 1)
    return _last_seq


_STORY_ID = re.compile(rb"#0*([0-9]{1,18})(?![0-9])")


def story_ids(commits: list[dict]) -> list[int]:
    """The stories the commits may reference, each once, sorted: every ``#N`` of their messages,
    whatever the destination's grammar (refsyntax.py: Tracker's brackets, Redmine's keywords
    both name a story so). A superset: an id no grammar reads only orders a little more."""
    found: set[int] = set()
    for c in commits:
        message = c.get("message") if isinstance(c, dict) else None
        if isinstance(message, str):
            found.update(int(m) for m in _STORY_ID.findall(message.encode("utf-8", "replace")))
    return sorted(found)


def make_entry(destination: str, commits: list[dict], now: float | None = None, **extra: object) -> dict:
    """A new entry. ``seq`` (next_seq unless given) and ``stories`` are fixed at queue time and
    travel with the entry through retries, restarts and crashes: the agent sends the entries of
    one story in ``seq`` order."""
    now = time.time() if now is None else now
    entry = {"v": ENTRY_VERSION, "dest": destination, "created": now, "attempts": 0, "due": now,
             "last_error": None, "seq": None, "stories": story_ids(commits), "commits": commits}
    entry.update(extra)
    if entry["seq"] is None:
        entry["seq"] = next_seq()
    return entry


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class UnsafeFile(SpoolError, OSError):
    """A file or folder of the spool that hookagent refuses: a symlink, not a regular file, owned
    by someone the spool does not trust, or (to be written) linked elsewhere too. An OSError as
    well, so each caller's ``except OSError`` treats it as the unusable file it is; its text is
    one line saying what is wrong and what to do."""

    def __init__(self, path: str, why: str) -> None:
        self.path, self.why = path, why
        OSError.__init__(self, errno.EPERM, f"{path} {why}; refusing it: remove it (someone who can"
                                            " write to the spool put it there)")

    def __str__(self) -> str:
        return str(self.strerror)


_NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _what_is(path: str, dir_fd: int | None = None) -> str | None:
    """Why the thing at ``path`` is not a file to open ("is a symlink (to X)", "is not a regular
    file"), or None when it is a regular file (or gone)."""
    try:
        st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            return f"is a symlink (to {os.readlink(path, dir_fd=dir_fd)})"
        except OSError:
            return "is a symlink"
    return None if stat.S_ISREG(st.st_mode) else "is not a regular file"


def open_nofollow(path: str, flags: int = os.O_RDONLY, mode: int = 0o600, *, dir_fd: int | None = None,
                  shown: str | None = None) -> int:
    """Open ``path`` without following a symlink at its name and without blocking on a FIFO:
    a regular file, or :class:`UnsafeFile`. For the files hookagent reads or writes outside a
    :class:`Spool` (a pid it only reads, a log file configured elsewhere); in the spool, use
    :meth:`Spool.open`."""
    shown = shown or path
    try:
        fd = os.open(path, flags | _NOFOLLOW, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.ENOTDIR, errno.EACCES):
            why = _what_is(path, dir_fd)
            if why:
                raise UnsafeFile(shown, why) from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFile(shown, "is not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class Claim:
    """An entry this agent owns until it acks, defers, releases or buries it."""

    __slots__ = ("name", "path", "entry")

    def __init__(self, name: str, path: str, entry: dict) -> None:
        self.name = name
        self.path = path
        self.entry = entry


class Spool:
    def __init__(self, root: str, group: str | None = None, *, create: bool = True) -> None:
        self.root = os.path.abspath(root)
        self.gid: int | None = None
        if group:
            import grp
            try:
                self.gid = grp.getgrnam(group).gr_gid
            except KeyError:
                raise SpoolError(f"spool_group: no group named {group!r}; create it or fix spool_group") from None
        self.dir_mode = 0o2770 if self.gid is not None else 0o700
        self.file_mode = 0o660 if self.gid is not None else 0o600
        self._members: dict[int, bool] = {}
        if create:
            self._prepare()
        else:
            self._check_root()

    # ------------------------------------------------------------ setup and safety
    def _prepare(self) -> None:
        try:
            self._check_root()
        except FileNotFoundError:
            try:
                self._make_parents(os.path.dirname(self.root))
                os.mkdir(self.root, self.dir_mode)
            except FileExistsError:
                pass
            except OSError as exc:
                raise SpoolError(f"cannot create spool {self.root}: {exc.strerror};"
                                 " create it or point spool_dir at a writable folder") from None
            self._fix_mode(self.root)
            self._check_root()
        for q in QUEUES:
            p = os.path.join(self.root, q)
            try:
                os.mkdir(p, self.dir_mode)     # mkdir never follows a symlink: a planted name is EEXIST
                self._fix_mode(p)
            except FileExistsError:
                self._check_folder(os.lstat(p), p)
            except UnsafeFile:
                raise
            except OSError as exc:
                raise SpoolError(f"cannot create {p}: {exc.strerror}; check the spool's owner and mode") from None

    def _make_parents(self, path: str) -> None:
        """The folders above the spool that do not exist yet, with the spool's own mode (0700, or
        2770 and its group with spool_group) whatever the umask: never open to everyone."""
        missing = []
        while path and not os.path.exists(path):
            missing.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        for folder in reversed(missing):
            try:
                os.mkdir(folder, self.dir_mode)
            except FileExistsError:
                continue
            self._fix_mode(folder)

    def _fix_mode(self, path: str) -> None:
        """Give a folder we have just made the spool's mode and group (and, made by root in
        someone else's spool, its owner): through a descriptor, never by a name someone may have
        swapped for a symlink meanwhile."""
        try:
            fd = os.open(path, _FOLDER)
        except OSError as exc:
            why = _what_is(path)
            if why:
                raise UnsafeFile(path, why) from None
            raise SpoolError(f"cannot set owner/mode of {path}: {exc.strerror}") from None
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise UnsafeFile(path, f"belongs to uid {st.st_uid}, though hookagent has just made it")
            owner = getattr(self, "owner_uid", None)   # unknown while the spool itself is made
            if os.geteuid() == 0 and owner:
                os.fchown(fd, owner, self.gid if self.gid is not None else self.owner_gid)
            elif self.gid is not None:
                os.fchown(fd, -1, self.gid)
            os.fchmod(fd, self.dir_mode)
        except UnsafeFile:
            raise
        except OSError as exc:
            raise SpoolError(f"cannot set owner/mode of {path}: {exc.strerror}") from None
        finally:
            os.close(fd)

    def _check_root(self) -> None:
        st = os.lstat(self.root)  # FileNotFoundError goes up to _prepare
        self.owner_uid, self.owner_gid = st.st_uid, st.st_gid
        if stat.S_ISLNK(st.st_mode):
            raise SpoolError(f"spool {self.root} is a symlink; refusing it: point spool_dir at the real folder")
        if not stat.S_ISDIR(st.st_mode):
            raise SpoolError(f"spool {self.root} is not a folder; fix spool_dir")
        if st.st_mode & stat.S_IWOTH:
            raise SpoolError(f"spool {self.root} is world-writable; refusing it: run chmod o-rwx {self.root}")
        uid = os.geteuid()
        if st.st_uid != uid and uid != 0:
            if self.gid is None or st.st_gid != self.gid:
                raise SpoolError(f"spool {self.root} belongs to uid {st.st_uid}, not to you (uid {uid});"
                                 " use your own spool_dir, or share it with spool_group")

    # ------------------------------------------------------------ opening files (see the module's docstring)
    def trusts(self, uid: int) -> bool:
        """Whether a file or folder of the spool may belong to ``uid``: you, the spool's owner,
        root, or (with spool_group) a member of the group."""
        if uid in (os.geteuid(), self.owner_uid, 0):
            return True
        if self.gid is None:
            return False
        known = self._members.get(uid)
        if known is None:
            import grp
            import pwd
            try:
                user = pwd.getpwuid(uid)
                known = user.pw_gid == self.gid or user.pw_name in grp.getgrgid(self.gid).gr_mem
            except KeyError:
                known = False
            self._members[uid] = known
        return known

    def _check_owner(self, st: os.stat_result, path: str) -> None:
        if not self.trusts(st.st_uid):
            whom = "root nor a member of its group" if self.gid is not None else "nor root"
            raise UnsafeFile(path, f"belongs to uid {st.st_uid}, who is not you, the spool's owner, {whom}")

    def _check_folder(self, st: os.stat_result, path: str) -> None:
        if stat.S_ISLNK(st.st_mode):
            raise UnsafeFile(path, "is a symlink, not a folder of the spool")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafeFile(path, "is not a folder")
        self._check_owner(st, path)

    def _open_folder(self, folder: str) -> int:
        """A descriptor of ``folder``, the spool or one folder in it, each step opened without
        following a symlink and checked."""
        steps = [(self.root, self.root)]
        if folder != self.root:
            parent, queue = os.path.split(folder)
            if parent != self.root:
                raise ValueError(f"{folder} is not a folder of the spool {self.root}")
            steps.append((queue, folder))
        fd: int | None = None
        try:
            for name, shown in steps:
                try:
                    sub = os.open(name, _FOLDER, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        self._check_folder(os.stat(name, dir_fd=fd, follow_symlinks=False), shown)
                    raise
                if fd is not None:
                    os.close(fd)
                fd = sub
                self._check_folder(os.fstat(fd), shown)
        except BaseException:
            if fd is not None:
                os.close(fd)
            raise
        return fd

    def open(self, path: str, flags: int = os.O_RDONLY) -> int:
        """Open a file of the spool, the one way hookagent does (see the module's docstring).
        ``flags`` as for os.open; with O_CREAT a missing file is made, with the spool's mode
        whatever the umask (group read-write with spool_group, so every user of a shared spool
        can use every file) and owned by the spool's owner when root makes it. FileNotFoundError
        when it is not there (without O_CREAT), :class:`UnsafeFile` when it is refused."""
        path = os.path.abspath(path)
        folder, name = os.path.split(path)
        dfd = self._open_folder(folder)
        try:
            fd = self._open_or_make(dfd, name, flags, path)
        finally:
            os.close(dfd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise UnsafeFile(path, "is not a regular file")
            self._check_owner(st, path)
            if flags & _WRITING and st.st_nlink > 1:
                st = _settled(fd, st)
                if st.st_nlink > 1:
                    raise UnsafeFile(path, f"has {st.st_nlink} hard links (it may be someone else's file)")
            if flags & os.O_TRUNC:
                os.ftruncate(fd, 0)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_or_make(self, dfd: int, name: str, flags: int, path: str) -> int:
        plain = flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC)
        if flags & os.O_EXCL:     # a name of its own (in tmp/): made right there
            return self._make(dfd, name, plain | os.O_CREAT)
        for _attempt in range(5):
            try:
                return open_nofollow(name, plain, dir_fd=dfd, shown=path)
            except FileNotFoundError:
                if not flags & os.O_CREAT:
                    raise
            except PermissionError:
                if not plain & (os.O_WRONLY | os.O_RDWR):
                    raise    # to read: the caller knows what an unreadable file means
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                raise UnsafeFile(path, f"is not writable by you (it belongs to uid {st.st_uid},"
                                       f" mode {stat.S_IMODE(st.st_mode):04o})") from None
            fd = self._make_aside(dfd, name, plain)
            if fd is not None:
                return fd
        raise SpoolError(f"cannot open {path}: it keeps appearing and disappearing; is someone"
                         " playing with the spool?")

    def _make(self, dfd: int, name: str, flags: int) -> int:
        """A new file ``name`` (O_EXCL: never through a name someone put there), given the
        spool's group, mode and owner."""
        fd = os.open(name, flags | os.O_EXCL | _NOFOLLOW, self.file_mode, dir_fd=dfd)
        try:
            os.set_blocking(fd, True)
            self._give(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _make_aside(self, dfd: int, name: str, flags: int) -> int | None:
        """Make ``name`` in tmp/ under a name of its own, give it the spool's mode and owner, and
        link it into place: no other process ever sees it with the umask's mode or root as its
        owner. None when someone else made it first (open theirs)."""
        try:
            tfd = self._open_folder(self.path("tmp"))
        except FileNotFoundError:     # no tmp/ (a spool not made by this version): made in place
            try:
                return self._make(dfd, name, flags | os.O_CREAT)
            except FileExistsError:
                return None
        try:
            aside = f".{name}.{os.getpid()}.{os.urandom(4).hex()}"
            fd = self._make(tfd, aside, flags | os.O_CREAT)
            try:
                os.link(aside, name, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
            except FileExistsError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            finally:
                _unlink(aside, tfd)
            return fd
        finally:
            os.close(tfd)

    def _give(self, fd: int) -> None:
        """A file we have just made: the spool's group and mode, and the spool's owner when root
        made it in someone else's spool."""
        euid = os.geteuid()
        if euid == 0 and self.owner_uid != 0:
            os.fchown(fd, self.owner_uid, self.gid if self.gid is not None else self.owner_gid)
        elif self.gid is not None:
            os.fchown(fd, -1, self.gid)
        if self.gid is not None or self.owner_uid != euid:
            os.fchmod(fd, self.file_mode)

    def open_file(self, path: str, flags: int) -> int:
        """Open a file of the spool, making it when missing (:meth:`open` with O_CREAT)."""
        return self.open(path, flags | os.O_CREAT)

    def read_file(self, path: str) -> bytes:
        """The bytes of a file of the spool (:meth:`open`'s checks)."""
        fd = self.open(path)
        try:
            return _read_all(fd)
        finally:
            os.close(fd)

    def ensure_file(self, path: str) -> str:
        """Create ``path`` (empty) with the spool's mode and owner if it does not exist; check it
        when it does (a file hookagent or SQLite will write)."""
        os.close(self.open(path, os.O_RDONLY | os.O_CREAT))
        return path

    def path(self, queue: str, name: str = "") -> str:
        return os.path.join(self.root, queue, name) if name else os.path.join(self.root, queue)

    # ------------------------------------------------------------ writing
    def _write(self, queue: str, name: str, entry: dict | bytes, mtime: float | None = None) -> str:
        # bytes: a file that is not an entry (hook.push.Snapshot, an inbox record)
        data = entry if isinstance(entry, bytes) else json.dumps(entry, separators=(",", ":")).encode("ascii")
        tmp = self._write_tmp(name, data, mtime)
        dest = self.path(queue, name)
        try:
            os.rename(tmp, dest)
        except BaseException:
            _unlink(tmp)
            raise
        _fsync_dir(self.path(queue))
        return dest

    def _write_tmp(self, name: str, data: bytes, mtime: float | None = None) -> str:
        """``data`` in a new file in tmp/ (a name of its own), synced; its path."""
        tmp = self.path("tmp", f"{name}.{os.getpid()}.{os.urandom(4).hex()}")
        fd = self.open_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if mtime is not None:
                os.utime(fd, (mtime, mtime))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def exists(self, name: str) -> bool:
        return any(os.path.exists(self.path(q, name)) for q in ("new", "deferred", "dead"))

    def enqueue(self, name: str, entry: dict, due: float | None = None) -> bool:
        """Store an entry in new/ (due now, or at ``due``: its mtime, the order agents take
        entries in). False when an entry of that name is already queued."""
        if self.exists(name):
            return False
        self._write("new", name, entry, mtime=due)
        return True

    def commit_entries(self, destination: str) -> set[str]:
        """Names of the one-commit entries for ``destination`` anywhere in the queue (new,
        deferred, claimed, dead): what a backfill must not queue a second time."""
        prefix = commit_entry_name(destination, "")[:-len(".json")]
        names: set[str] = set()
        for queue in ("new", "deferred", "cur", "dead"):
            try:
                with os.scandir(self.path(queue)) as it:
                    names.update(e.name.partition("@")[0] for e in it   # cur/: NAME@AGENT
                                 if e.name.startswith(prefix))
            except FileNotFoundError:
                continue
        return names

    # ------------------------------------------------------------ the inbox (hooks' raw records)
    def inbox_names(self, keys: tuple[str, ...] = ()) -> list[str]:
        """Records in inbox/ (of these agent keys, or all), oldest first: the order the hooks
        wrote them."""
        prefixes = tuple(f"{k}." for k in keys) or ("",)
        return self._oldest_first("inbox", lambda n: n.startswith(prefixes) and not n.startswith("."))

    def read_record(self, name: str) -> tuple[bytes, float]:
        """A record's bytes and its age in seconds (OSError when it is gone or unreadable)."""
        fd = self.open(self.path("inbox", name))
        try:
            age = time.time() - os.fstat(fd).st_mtime
            return _read_all(fd), age
        finally:
            os.close(fd)

    def record_done(self, name: str) -> None:
        """The record's commits are queued (or it held none): it goes."""
        _unlink(self.path("inbox", name))

    def quarantine_record(self, name: str) -> None:
        self._quarantine(self.path("inbox", name), name)

    def write_record(self, name: str, data: bytes) -> bool:
        """Write a record as the sh hook does (for Python's hook paths). False when one of that
        name is there already (the same commit)."""
        dest = self.path("inbox", name)
        try:
            if stat.S_ISREG(os.lstat(dest).st_mode):
                return False
            _unlink(dest)        # a symlink or a FIFO someone put there: not a record
        except FileNotFoundError:
            pass
        tmp = self._write_tmp(name, data)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            return False
        finally:
            _unlink(tmp)
        _fsync_dir(self.path("inbox"))
        return True

    # ------------------------------------------------------------ the agent's side
    def due_names(self, tag: str | None = None) -> list[str]:
        """Names in new/ (for destination ``tag``, or all), oldest first (by mtime: when each
        became due). An agent takes only its own destination's entries: another config sharing
        the spool has another tracker and token."""
        return self._oldest_first("new", lambda n: n.endswith(".json") and entry_for(n, tag))

    def _oldest_first(self, queue: str, wanted) -> list[str]:
        """The names in ``queue`` that ``wanted`` accepts, by mtime (ties by name)."""
        out = []
        with os.scandir(self.path(queue)) as it:
            for e in it:
                if wanted(e.name):
                    try:
                        out.append((e.stat().st_mtime_ns, e.name))
                    except FileNotFoundError:
                        continue
        out.sort()
        return [n for _, n in out]

    def promote_due(self, now: float, tag: str | None = None) -> int:
        """Move deferred entries whose due time (file mtime) has come into new/."""
        moved = 0
        with os.scandir(self.path("deferred")) as it:
            for e in it:
                if not entry_for(e.name, tag):
                    continue
                try:
                    if e.stat().st_mtime <= now:
                        os.rename(e.path, self.path("new", e.name))
                        moved += 1
                except FileNotFoundError:
                    continue
        return moved

    def next_due(self, tag: str | None = None) -> float | None:
        best = None
        with os.scandir(self.path("deferred")) as it:
            for e in it:
                if not entry_for(e.name, tag):
                    continue
                try:
                    m = e.stat().st_mtime
                except FileNotFoundError:
                    continue
                best = m if best is None or m < best else best
        return best

    def claim(self, name: str, agent_id: str) -> Claim | None:
        """Take new/NAME for this agent (a rename). None if another agent was faster.

        A file that cannot be parsed is moved to corrupt/ and None is returned.
        """
        path = self.path("cur", f"{name}@{agent_id}")
        try:
            os.rename(self.path("new", name), path)
        except FileNotFoundError:
            return None
        try:
            raw = self.read_file(path)
        except OSError as exc:   # not ours to read (e.g. written by root): leave it, say so
            os.rename(path, self.path("new", name))
            if isinstance(exc, UnsafeFile):
                raise SpoolError(f"cannot read spool entry {name}: it {exc.why}; remove"
                                 f" {self.path('new', name)} (someone who can write to the spool put it there)") from None
            raise SpoolError(f"cannot read spool entry {name}: {exc.strerror}; fix its owner and"
                             f" mode (chown/chmod it like the spool {self.root})") from None
        try:
            entry = json.loads(raw.decode("utf-8"))
            if not isinstance(entry, dict) or not isinstance(entry.get("commits"), list):
                raise ValueError("not an entry")
            float(entry.get("created") or 0)
        except (ValueError, UnicodeDecodeError, TypeError):
            self._quarantine(path, name)
            return None
        return Claim(name, path, entry)

    def _quarantine(self, path: str, name: str) -> None:
        try:
            os.rename(path, self.path("corrupt", f"{name}.{int(time.time())}"))
        except OSError:
            pass

    def ack(self, claim: Claim) -> None:
        """Delivered (2xx for every commit): the entry is gone."""
        _unlink(claim.path)

    def release(self, claim: Claim) -> None:
        """Put the entry back unchanged, due now (a held queue spends no attempt)."""
        os.rename(claim.path, self.path("new", claim.name))

    def return_claims(self, agent_id: str) -> int:
        """Put this agent's own claims back in new/: those a pass could not file or release
        because the disk refused even a rename (a read-only spool). Claims live only within a
        pass, so between passes every ``NAME@AGENTID`` of ours is one of those."""
        suffix = f"@{agent_id}"
        with os.scandir(self.path("cur")) as it:
            names = [e.name for e in it if e.name.endswith(suffix)]
        for claimed in names:
            try:
                os.rename(self.path("cur", claimed), self.path("new", claimed[:-len(suffix)]))
            except FileNotFoundError:
                pass
        return len(names)

    def defer(self, claim: Claim, due: float) -> None:
        self._write("deferred", claim.name, claim.entry, mtime=due)
        _unlink(claim.path)

    def bury(self, claim: Claim) -> None:
        self._write("dead", claim.name, claim.entry)
        _unlink(claim.path)

    def bury_part(self, name: str, entry: dict) -> None:
        """Part of a claimed entry, refused for good, as an entry of its own in dead/ (written
        before the claim is filed: a crash between them refuses it again under the same name)."""
        self._write("dead", name, entry)

    def put_back(self, claim: Claim) -> None:
        """Like ``release``, but the entry as the agent changed it (what is left of it), in
        new/ at its place in the due order (the claimed file's mtime)."""
        mtime = os.lstat(claim.path).st_mtime
        self._write("new", claim.name, claim.entry, mtime=mtime)
        _unlink(claim.path)

    def requeue(self, queue: str, now: float | None = None) -> int:
        """Move every entry of deferred/ or dead/ back to new/, due now (``hookagent retry``)."""
        now = time.time() if now is None else now
        moved = 0
        with os.scandir(self.path(queue)) as it:
            for e in list(it):
                try:
                    entry = json.loads(self.read_file(e.path))
                except (OSError, ValueError):
                    continue
                entry["due"] = now
                if queue == "dead":
                    entry["attempts"] = 0
                    entry["created"] = now  # a fresh max_age for what a person re-queued
                self._write("new", e.name, entry)
                _unlink(e.path)
                moved += 1
        return moved

    def retag(self, queue: str, name: str, new_name: str, destination: str) -> str:
        """Entry ``name`` of ``queue`` becomes ``new_name`` for ``destination`` (retarget.py):
        written anew in the same queue with the same due time, then the old one goes. "moved";
        "duplicate" when an entry of the new name is queued already (the old one goes); "gone"
        when it was taken meanwhile or cannot be read (left as it is)."""
        path = self.path(queue, name)
        try:
            fd = self.open(path)
            try:
                entry = json.loads(_read_all(fd))
                mtime = os.fstat(fd).st_mtime
            finally:
                os.close(fd)
        except (OSError, ValueError):
            return "gone"
        if not isinstance(entry, dict):
            return "gone"
        if self.exists(new_name) or os.path.exists(self.path(queue, new_name)):
            _unlink(path)
            return "duplicate"
        entry["dest"] = destination
        written = self._write(queue, new_name, entry, mtime=mtime)
        try:
            os.unlink(path)   # the old one goes after the new one is there: a crash between
        except FileNotFoundError:   # them sends it twice at most, never loses it
            _unlink(written)  # an agent of the old destination took it meanwhile: it is theirs
            return "gone"
        return "moved"

    def write_state_file(self, name: str, data: bytes) -> None:
        """A file of state/ that is not a destination's state, written as every spool file is."""
        self._write("state", name, data)

    # ------------------------------------------------------------ agents and stale claims
    def recover_stale(self) -> int:
        """Return claims of agents that died (their lock file is free) to new/."""
        import fcntl
        alive: dict[str, bool] = {}
        recovered = 0
        with os.scandir(self.path("cur")) as it:
            names = [e.name for e in it]
        for claimed in names:
            name, _, agent_id = claimed.rpartition("@")
            if not name:
                continue
            if agent_id not in alive:
                lock = self.path("locks", f"{agent_id}.lock")
                try:
                    fd = self.open(lock)   # flock needs no write access
                except UnsafeFile:          # no agent's lock: its claims go back
                    alive[agent_id] = False
                    _unlink(lock)
                except FileNotFoundError:
                    alive[agent_id] = False
                except PermissionError:
                    alive[agent_id] = True        # cannot tell: leave it to its owner
                else:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        alive[agent_id] = False
                        _unlink(lock)
                    except OSError as exc:
                        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                            raise
                        alive[agent_id] = True
                    finally:
                        os.close(fd)
            if not alive[agent_id]:
                try:
                    os.rename(self.path("cur", claimed), self.path("new", name))
                    recovered += 1
                except FileNotFoundError:
                    pass
        return recovered

    def count(self, queue: str) -> int:
        with os.scandir(self.path(queue)) as it:
            return sum(1 for _ in it)

    def entries(self, queue: str) -> list[tuple[str, dict | None]]:
        out = []
        with os.scandir(self.path(queue)) as it:
            for e in it:
                try:
                    out.append((e.name, json.loads(self.read_file(e.path))))
                except (OSError, ValueError):
                    out.append((e.name, None))
        return out

    # ------------------------------------------------------------ destination state
    def _state_path(self, destination: str) -> str:
        return self.path("state", f"dest-{dest_tag(destination)}.json")

    def read_state(self, destination: str) -> dict:
        try:
            st = json.loads(self.read_file(self._state_path(destination)).decode("utf-8"))
            if isinstance(st, dict):
                return st
        except (OSError, ValueError):    # missing, unreadable, or refused: write_state replaces it
            pass
        return {"destination": destination, "failures": 0, "paused_until": 0.0, "held": None,
                "last_error": None, "last_error_at": None, "last_success_at": None}

    def write_state(self, destination: str, st: dict) -> None:
        st["destination"] = destination
        self._write("state", os.path.basename(self._state_path(destination)), st)

    def all_states(self) -> list[dict]:
        out = []
        for _name, st in self.entries("state"):
            if isinstance(st, dict):
                out.append(st)
        return out


def open_log(path: str, spool_dir: str, group: str | None) -> int:
    """Open the agent log for appending, creating it. In the spool (its default place), through
    the spool: group-writable with spool_group, so whichever user's hook or agent makes it first,
    the others can write it too; the spool owner's when root makes it; never through a symlink.
    Elsewhere (agent.log_file): never through a symlink either."""
    path = os.path.abspath(path)
    spool = os.path.abspath(spool_dir)
    if os.path.dirname(path) == spool:
        return Spool(spool, group, create=False).open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


_pause = time.sleep   # _settled's wait (a test removes the twin in it)


def _settled(fd: int, st: os.stat_result) -> os.stat_result:
    """A file another process is placing (made in tmp/, linked into place, then its tmp/ name
    removed: Spool._make_aside) has two links for a moment: wait up to 0.1 s for the second to
    go. A hard link someone planted stays, and is refused."""
    for _ in range(100):
        _pause(0.001)
        st = os.fstat(fd)
        if st.st_nlink <= 1:
            break
    return st


def _unlink(path: str, dir_fd: int | None = None) -> None:
    try:
        os.unlink(path, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


class BackfillLock:
    """Held (LOCK_SH: backfills of several repositories may run at once) while a backfill
    queues entries for a destination; :meth:`running` asks whether any backfill holds it."""

    def __init__(self, spool: Spool, destination: str) -> None:
        import fcntl
        self.fd = spool.open_file(backfill_lock_path(spool.root, destination), os.O_RDWR)
        fcntl.flock(self.fd, fcntl.LOCK_SH)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @staticmethod
    def running(spool: Spool, destination: str) -> bool:
        import fcntl
        try:
            fd = spool.open(backfill_lock_path(spool.root, destination))
        except OSError:        # none yet (or not ours to read): no backfill to wait for
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False       # closing the descriptor lets it go
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            raise
        finally:
            os.close(fd)


class AgentLock:
    """A running agent's identity: a flock-ed file in locks/. Its claims die with it."""

    def __init__(self, spool: Spool) -> None:
        import fcntl
        self.id = f"{os.getpid()}-{os.urandom(3).hex()}"
        self.path = spool.path("locks", f"{self.id}.lock")
        # Lock first, then rename into place: a lock file never exists unlocked, so another
        # agent's recover_stale cannot mistake a starting agent for a dead one.
        tmp = spool.path("tmp", f"{self.id}.lock")
        self.fd = spool.open_file(tmp, os.O_RDWR | os.O_EXCL)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        os.rename(tmp, self.path)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                _unlink(self.path)
            except OSError:    # a read-only spool: left behind unlocked, recover_stale ends it
                pass
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "AgentLock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
