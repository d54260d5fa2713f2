"""Turn an svn revision into a Commit, with svnlook (default) or Debian's pysvn.

svn runs hooks with an empty environment: svnlook is called by absolute path (baked in at
install as HOOKAGENT_SVNLOOK) and revision properties are read with ``propget --revprop``, which
prints the stored UTF-8 bytes whatever the locale (``svnlook info``, ``proplist -v`` and ``--xml``
transliterate non-ASCII text to ``{U+65E5}`` when the locale is C, which is what a hook gets
wherever C.UTF-8 is missing). The three propgets run side by side. Importing pysvn takes longer
than the svnlook calls it would replace (benchmarks/bench_svn_commit.py), so svnlook stays the
default; ``svn.reader: pysvn`` (or ``auto``) uses pysvn. Each reader falls back to the other when
it is missing.

On the hook path: no subprocess, shutil or datetime imports (each commit would pay for them);
svnlook is started with os.posix_spawn. Backfill's helpers below import what they need themselves.
"""
from __future__ import annotations

import os
TYPE_CHECKING = False  # the typing module stays out of the hook's imports

if TYPE_CHECKING:
    from collections.abc import Iterator

from hookagent.errors import VcsError
from hookagent.model import Commit

SVNLOOK_FALLBACKS = ("/usr/bin/svnlook", "/usr/local/bin/svnlook", "/opt/homebrew/bin/svnlook")
REVPROPS = ("svn:log", "svn:author", "svn:date")


def _which(name: str) -> str | None:
    for folder in (os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin").split(os.pathsep):
        candidate = os.path.join(folder or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def svnlook_path() -> str:
    env = os.environ.get("HOOKAGENT_SVNLOOK")
    if env and os.access(env, os.X_OK):
        return env
    found = _which("svnlook")
    if found:
        return found
    for p in SVNLOOK_FALLBACKS:
        if os.access(p, os.X_OK):
            return p
    raise VcsError("svnlook not found; install subversion's tools, or reinstall the hook"
                   " (hookagent install REPOS) where svnlook is on PATH so it names svnlook's path")


def uuid(repos: str) -> str:
    try:
        with open(os.path.join(repos, "db", "uuid"), encoding="ascii") as fh:
            found = fh.readline().strip()
        if found:
            return found
    except OSError:
        pass
    return _svnlook(["uuid", repos]).decode().strip()


def _svnlook_env() -> dict[str, str]:
    return {"LC_ALL": "C.UTF-8", "PATH": os.environ.get("PATH") or "/usr/bin:/bin"}


def _spawn(argv: list[str]) -> tuple[int, int, int]:
    """Start argv with stdin from /dev/null; returns (pid, stdout fd, stderr fd) to read."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.posix_spawn(argv[0], argv, _svnlook_env(), file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ])
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)
        os.close(err_w)
    return pid, out_r, err_r


def _read_all(fd: int) -> bytes:
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _collect(pid: int, out_fd: int, err_fd: int) -> tuple[int, bytes, bytes]:
    """Wait for a process from _spawn: (exit code, stdout, stderr). Its stderr is a line or two,
    so reading stdout to the end first cannot block on a full stderr pipe."""
    out = _read_all(out_fd)
    err = _read_all(err_fd)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out, err


def _failure(what: str, code: int, err: bytes) -> VcsError:
    lines = err.decode("utf-8", "replace").strip().splitlines()
    return VcsError(f"svnlook {what} failed: {lines[-1] if lines else f'exit status {code}'}")


def _svnlook(args: list[str]) -> bytes:
    code, out, err = _collect(*_spawn([svnlook_path(), *args]))
    if code != 0:
        raise _failure(args[0], code, err)
    return out


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def revprops_svnlook(repos: str, rev: int, svnlook: str | None = None) -> dict[str, str]:
    """svn:log, svn:author and svn:date as stored; an unset one (an anonymous commit has no
    author, a log can be deleted) is "". Three `svnlook propget --revprop`, run side by side."""
    svnlook = svnlook or svnlook_path()
    running = []
    try:
        for name in REVPROPS:
            running.append((name, _spawn([svnlook, "propget", "--revprop", "-r", str(rev), repos, name])))
    except BaseException:
        for _name, proc in running:
            _collect(*proc)
        raise
    out: dict[str, str] = {}
    failure = None
    for name, proc in running:
        code, value, err = _collect(*proc)
        if code == 0:
            out[name] = _decode(value)
        elif b"E200017" in err:          # property not found on that revision
            out[name] = ""
        elif failure is None:
            failure = _failure("propget", code, err)
    if failure is not None:
        raise failure
    return out


NO_CONFIG_DIR = "/dev/null/hookagent-no-svn-config"
"""pysvn's config dir: one that cannot exist, so a hook neither reads nor creates the ~/.subversion
of the user svn runs as (file:// access needs no configuration or credentials)."""


def revprops_pysvn(repos: str, rev: int) -> dict[str, str]:
    import pysvn
    client = pysvn.Client(NO_CONFIG_DIR)
    url = file_url(repos)
    revision = pysvn.Revision(pysvn.opt_revision_kind.number, rev)
    _, props = client.revproplist(url, revision=revision)
    return {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else v) for k, v in props.items()}


def pysvn_available() -> bool:
    try:
        import pysvn  # noqa: F401
        return True
    except ImportError:
        return False


def iso_date(svn_date: str) -> str:
    """svn:date (2026-11-28T07:22:14.225148Z, always UTC) as ISO 8601 with an offset."""
    text = svn_date.strip()
    if len(text) >= 20 and text.endswith("Z") and text[4] == "-" and text[7] == "-" and text[10] == "T" \
            and text[13] == ":" and text[16] == ":" and text[:4].isdigit() and text[17:19].isdigit():
        return text[:19] + "+00:00"
    return text


def choose_reader(reader: str) -> str:
    """svnlook or pysvn for ``svn.reader``; each falls back to the other when it is missing here
    (both read the same bytes), so a commit is recorded rather than lost to a packaging gap."""
    return "pysvn" if _reader(reader)[1] is None else "svnlook"


def _reader(reader: str) -> tuple[str, str | None]:
    """(the reader choose_reader picks, svnlook's path when that reader is svnlook)."""
    if reader in ("pysvn", "auto") and pysvn_available():
        return "pysvn", None
    try:
        return "svnlook", svnlook_path()
    except VcsError:
        if reader == "svnlook" and pysvn_available():
            return "pysvn", None
        raise


def read_revision(repos: str, rev: int, *, reader: str = "svnlook", id_style: str = "revision",
                  url: str | None = None, repo_uuid: str | None = None) -> Commit:
    reader, svnlook = _reader(reader)
    props = revprops_pysvn(repos, rev) if reader == "pysvn" else revprops_svnlook(repos, rev, svnlook)
    repo_uuid = repo_uuid or uuid(repos)
    commit_id = f"{repo_uuid}@{rev}" if id_style == "uuid@rev" else str(rev)
    return Commit(commit_id, props.get("svn:author", "").strip(), props.get("svn:log", ""),
                  ident=f"svn:{repo_uuid}@{rev}", date=iso_date(props.get("svn:date", "")), url=url,
                  repo=os.path.abspath(repos), vcs="svn")


def is_repository(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "format")) and os.path.isdir(os.path.join(path, "db"))


def file_url(path: str) -> str:
    """A local repository path as a file:// URL, percent-encoded (spaces, non-ASCII)."""
    from pathlib import Path
    return Path(os.path.abspath(path)).as_uri()


def local_path(target: str) -> str | None:
    """The repository folder a path or a file:// URL names; None for a remote URL."""
    if "://" not in target:
        return os.path.abspath(target)
    if target.startswith("file://"):
        from urllib.parse import unquote, urlsplit
        parts = urlsplit(target)
        if parts.netloc in ("", "localhost"):
            return unquote(parts.path).rstrip("/") or "/"
    return None


def _tool_env() -> dict[str, str]:
    """svnlook's environment plus HOME, where the svn client keeps stored credentials."""
    return {**_svnlook_env(), "HOME": os.environ.get("HOME") or "/"}


def _svn() -> str:
    return _which("svn") or "/usr/bin/svn"


def _svn_info(item: str, target: str):
    """`svn info --show-item ITEM TARGET`, finished (a subprocess.CompletedProcess)."""
    import subprocess
    return subprocess.run([_svn(), "info", "--show-item", item, "--non-interactive", target],
                          stdin=subprocess.DEVNULL, capture_output=True, env=_tool_env())


def stream_log(target: str, rev_range: str = "1:HEAD") -> Iterator[tuple[int, str, str, str]]:
    """Yield (rev, author, date, message) for a range, streaming `svn log --xml` (one process).

    Raises VcsError with svn's own last error line when svn log fails (no such revision,
    not a repository, cannot connect)."""
    import subprocess
    import xml.etree.ElementTree as ET
    url = target if "://" in target else file_url(target)
    proc = subprocess.Popen([_svn(), "log", "--xml", "--non-interactive", "-r", rev_range, url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_tool_env())
    parse_error: ET.ParseError | None = None
    try:
        for _event, elem in ET.iterparse(proc.stdout, events=("end",)):
            if elem.tag != "logentry":
                continue
            yield (int(elem.get("revision")), elem.findtext("author") or "", iso_date(elem.findtext("date") or ""),
                   elem.findtext("msg") or "")
            elem.clear()
    except ET.ParseError as exc:   # svn stopped half-way (its error is on stderr)
        parse_error = exc
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.stderr.close()
        code = proc.wait()
    if code != 0 and "E160006" in err and rev_range.split(":")[0] == "1" and _youngest(url) == 0:
        return   # a repository without commits yet: nothing to backfill
    if code != 0:
        last = err.splitlines()[-1] if err else f"exit status {code}"
        raise VcsError(f"svn log -r {rev_range} {url} failed: {last}; {_hint(err, url)}")
    if parse_error is not None:
        raise VcsError(f"svn log --xml gave unreadable output ({parse_error}); check `svn log --xml {url}`")


def _youngest(url: str) -> int | None:
    """The repository's latest revision number, or None when svn cannot tell."""
    proc = _svn_info("revision", url)
    text = proc.stdout.decode(errors="replace").strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else None


def _hint(err: str, url: str) -> str:
    """What to do next about an svn client error."""
    if any(code in err for code in ("E170001", "E215004", "E170013")):
        return (f"svn needs credentials here: run `svn info {url}` once to store them, or backfill the"
                " repository's path on the server")
    if "E160006" in err:
        return "check the range (-r N:M; `svnlook youngest REPOS` gives the latest revision)"
    return f"give an svn repository path or URL (file://, svn://, http(s)://) that `svn info {url}` accepts"


def remote_uuid(target: str) -> str:
    if "://" not in target and is_repository(target):
        return uuid(target)
    proc = _svn_info("repos-uuid", target)
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise VcsError(f"svn info {target} failed: {err.splitlines()[-1] if err else proc.returncode};"
                       f" {_hint(err, target)}")
    return proc.stdout.decode().strip()
