"""Turn an svn revision into a Commit, with svnlook (default) or Debian's pysvn.

svn runs hooks with an empty environment: svnlook is called by absolute path (baked in at
install as HOOKAGENT_SVNLOOK) and revision properties are read with ``propget --revprop``, which
prints the stored UTF-8 bytes whatever the locale (``svnlook info`` and ``--xml`` transliterate
non-ASCII text to ``{U+65E5}`` under the C locale). pysvn costs ~22 ms to import against ~4 ms per
svnlook call here, so svnlook stays the default; ``svn.reader: pysvn`` (or ``auto``) uses pysvn.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime

from hookagent.errors import VcsError
from hookagent.model import Commit

SVNLOOK_FALLBACKS = ("/usr/bin/svnlook", "/usr/local/bin/svnlook", "/opt/homebrew/bin/svnlook")


def svnlook_path() -> str:
    env = os.environ.get("HOOKAGENT_SVNLOOK")
    if env and os.access(env, os.X_OK):
        return env
    found = shutil.which("svnlook")
    if found:
        return found
    for p in SVNLOOK_FALLBACKS:
        if os.access(p, os.X_OK):
            return p
    raise VcsError("svnlook not found; install subversion or reinstall the hook so it names svnlook's path")


def uuid(repos: str) -> str:
    try:
        with open(os.path.join(repos, "db", "uuid"), encoding="ascii") as fh:
            return fh.readline().strip()
    except OSError:
        return _svnlook(["uuid", repos]).decode().strip()


def _svnlook(args: list[str]) -> bytes:
    env = {"LC_ALL": "C.UTF-8", "PATH": os.environ.get("PATH") or "/usr/bin:/bin"}
    proc = subprocess.run([svnlook_path(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VcsError(f"svnlook {args[0]} failed: {msg[-1] if msg else proc.returncode}")
    return proc.stdout


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def revprops_svnlook(repos: str, rev: int) -> dict[str, str]:
    out = {}
    for name in ("svn:log", "svn:author", "svn:date"):
        try:
            out[name] = _decode(_svnlook(["propget", "--revprop", "-r", str(rev), repos, name]))
        except VcsError:
            out[name] = ""   # an unset property (e.g. anonymous commits have no author)
    return out


def revprops_pysvn(repos: str, rev: int) -> dict[str, str]:
    import pysvn
    client = pysvn.Client()
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
    """svn:date (2026-11-28T07:22:14.225148Z) as ISO 8601 with an offset."""
    if not svn_date:
        return ""
    try:
        return datetime.strptime(svn_date.strip(), "%Y-%m-%dT%H:%M:%S.%fZ").strftime("%Y-%m-%dT%H:%M:%S+00:00")
    except ValueError:
        return svn_date.strip()


def read_revision(repos: str, rev: int, *, reader: str = "svnlook", id_style: str = "revision",
                  url: str | None = None, repo_uuid: str | None = None) -> Commit:
    if reader == "auto":
        reader = "pysvn" if pysvn_available() else "svnlook"
    props = revprops_pysvn(repos, rev) if reader == "pysvn" else revprops_svnlook(repos, rev)
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
    return {"LC_ALL": "C.UTF-8", "PATH": os.environ.get("PATH") or "/usr/bin:/bin",
            "HOME": os.environ.get("HOME") or "/"}


def stream_log(target: str, rev_range: str = "1:HEAD"):
    """Yield (rev, author, date, message) for a range, streaming `svn log --xml` (one process).

    Raises VcsError with svn's own last error line when svn log fails (no such revision,
    not a repository, cannot connect)."""
    import xml.etree.ElementTree as ET
    url = target if "://" in target else file_url(target)
    svn = shutil.which("svn") or "/usr/bin/svn"
    proc = subprocess.Popen([svn, "log", "--xml", "--non-interactive", "-r", rev_range, url],
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
    if code != 0:
        last = err.splitlines()[-1] if err else f"exit status {code}"
        raise VcsError(f"svn log -r {rev_range} {url} failed: {last}; check the range and the URL"
                       " (`svn log -r RANGE URL` shows the same)")
    if parse_error is not None:
        raise VcsError(f"svn log --xml gave unreadable output ({parse_error}); check `svn log --xml {url}`")


def remote_uuid(target: str) -> str:
    if "://" not in target and is_repository(target):
        return uuid(target)
    svn = shutil.which("svn") or "/usr/bin/svn"
    proc = subprocess.run([svn, "info", "--show-item", "repos-uuid", "--non-interactive", target],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=_tool_env())
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VcsError(f"svn info {target} failed: {err[-1] if err else proc.returncode}; give an svn"
                       " repository path or URL (file://, svn://, http(s)://)")
    return proc.stdout.decode().strip()
