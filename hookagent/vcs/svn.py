"""Turn an svn revision into a Commit, with svnlook (default) or Debian's pysvn.

svn runs hooks with an empty environment: svnlook is called by absolute path (baked in at
install as HOOKAGENT_SVNLOOK) and revision properties are read with ``propget --revprop``, which
prints the stored UTF-8 bytes whatever the locale (``svnlook info``, ``proplist -v`` and ``--xml``
transliterate non-ASCII text to ``{U+65E5}`` when the locale is C, which is what a hook gets
wherever C.UTF-8 is missing). The three propgets run side by side. svnlook stays the default
reader because importing pysvn costs more than the three svnlook calls
(benchmarks/bench_svn_commit.py); ``svn.reader: pysvn`` (or ``auto``) uses pysvn. Each reader
falls back to the other when it is missing.

svnlook and svn run through hookagent.process, in an environment of their own: PATH and
LC_ALL=C.UTF-8 (plus HOME for the svn client's stored credentials). Their error messages keep
svn's last error line: svn prints a chain of errors, outermost first, so the last one is the cause.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from typing import cast

from hookagent import process
from hookagent.errors import ProcessError, VcsError
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
    hint = f"check that {repos} is an svn repository that this user can read"
    return _svnlook(["uuid", repos], hint).decode().strip()


def _svnlook_env() -> dict[str, str]:
    return {"LC_ALL": "C.UTF-8", "PATH": os.environ.get("PATH") or "/usr/bin:/bin"}


def _failure(what: str, exc: ProcessError, hint: str) -> VcsError:
    """svnlook's error as it always read, ``svnlook WHAT failed: <its last error line>``, then
    the exit status and what to do."""
    if exc.returncode is None:   # could not start: the runner's message says why
        return exc
    lines = exc.stderr.decode("utf-8", "replace").strip().splitlines()
    line = f"{lines[-1]} (exit status {exc.returncode})" if lines else f"exit status {exc.returncode}"
    return VcsError(f"svnlook {what} failed: {line}; {hint}")


def _svnlook(args: list[str], hint: str) -> bytes:
    try:
        return process.run([svnlook_path(), *args], env=_svnlook_env()).stdout
    except ProcessError as exc:
        raise _failure(args[0], exc, hint) from None


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def revprops_svnlook(repos: str, rev: int, svnlook: str | None = None) -> dict[str, str]:
    """svn:log, svn:author and svn:date as stored; an unset one (an anonymous commit has no
    author, a log can be deleted) is "". Three `svnlook propget --revprop`, run side by side."""
    svnlook = svnlook or svnlook_path()
    env = _svnlook_env()
    running: list[tuple[str, process.Process]] = []
    out: dict[str, str] = {}
    failure = None
    try:
        for name in REVPROPS:
            running.append((name, process.Process([svnlook, "propget", "--revprop", "-r", str(rev), repos, name],
                                                  env=env)))
        for name, proc in running:
            try:
                out[name] = _decode(proc.finish().stdout)
            except ProcessError as exc:
                if b"E200017" in exc.stderr:          # property not found on that revision
                    out[name] = ""
                elif failure is None:
                    failure = _failure("propget", exc, f"check that {repos} is an svn repository that this"
                                       f" user can read, with a revision {rev}")
    finally:
        for _name, proc in running:
            proc.close()
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


def _svn_info(item: str, target: str) -> process.Result:
    """`svn info --show-item ITEM TARGET`, finished, whatever its exit status."""
    return process.run([_svn(), "info", "--show-item", item, "--non-interactive", target], env=_tool_env(),
                       check=False)


def stream_log(target: str, rev_range: str = "1:HEAD") -> Iterator[tuple[int, str, str, str]]:
    """Yield (rev, author, date, message) for a range, streaming `svn log --xml` (one process).

    Raises VcsError with svn's own last error line when svn log fails (no such revision,
    not a repository, cannot connect)."""
    import xml.etree.ElementTree as ET
    url = target if "://" in target else file_url(target)
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
    chunks = process.stream([_svn(), "log", "--xml", "--non-interactive", "-r", rev_range, url], env=_tool_env())
    try:
        for chunk in chunks:
            parser.feed(chunk)
            # ("end", element) pairs: only "end" events were asked for
            for _event, elem in cast("Iterator[tuple[str, ET.Element]]", parser.read_events()):
                if elem.tag != "logentry":
                    continue
                yield (int(elem.get("revision") or 0), elem.findtext("author") or "",
                       iso_date(elem.findtext("date") or ""), elem.findtext("msg") or "")
                elem.clear()
        parser.close()
    except ProcessError as exc:
        if exc.returncode is None:
            raise
        err = exc.stderr.decode("utf-8", "replace").strip()
        if "E160006" in err and rev_range.split(":")[0] == "1" and _youngest(url) == 0:
            return   # a repository without commits yet: nothing to backfill
        last = err.splitlines()[-1] if err else f"exit status {exc.returncode}"
        raise VcsError(f"svn log -r {rev_range} {url} failed: {last}; {_hint(err, url)}") from None
    except ET.ParseError as exc:   # svn said it succeeded, but its XML stopped or broke off
        raise VcsError(f"svn log --xml gave unreadable output ({exc}); check `svn log --xml {url}`") from None
    finally:
        chunks.close()


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
