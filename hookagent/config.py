"""The configuration file: YAML into frozen dataclasses, defaults in one place.

The sh hook never reads it: `hookagent install` bakes in the few values it needs (spool, agent
key, autostart). Python's hook paths (post-receive, svn log edits) and the agent load it.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from typing import Any

from hookagent.errors import ConfigError, warn
from hookagent.paths import default_config_paths, default_spool_dir, find_config  # noqa: F401
from hookagent.sinks import API_CHOICES, GITHUB_FORMATS

GITHUB_MAX_COMMITS = 2048   # what GitHub itself puts in one push event at most
LOG_CHOICES = ("file", "stderr", "journald")
REWRITES_CHOICES = ("once", "every")


@dataclass(frozen=True)
class GithubPush:
    """``tracker.github``: how the github-push sink sends (ignored by the other APIs)."""
    format: str = "form"                 # form: payload=<JSON> form field; json: the JSON as body
    max_commits_per_request: int = 100


@dataclass(frozen=True)
class Keywords:
    """``tracker.keywords``: the words of ``syntax: redmine`` (refsyntax.py); Redmine's defaults."""
    refs: tuple[str, ...] = ("refs", "references", "IssueID")
    finished: tuple[str, ...] = ("fixes", "closes")
    delivered: tuple[str, ...] = ()


@dataclass(frozen=True)
class RedmineSettings:
    """``tracker.redmine``: the redmine sink's statuses and authors (ignored by the other APIs).
    ``statuses``: state (finished, delivered) -> a status id or name, checked against the
    server when the agent starts; ``authors``: commit e-mail (lower case) -> Redmine login."""
    statuses: tuple[tuple[str, int | str], ...] = ()
    authors: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Tracker:
    url: str = "https://www.pivotaltracker.com"
    api: str = "v3"
    token_file: str | None = None
    token_env: str | None = None
    token_credential: str | None = None   # a systemd credential's name (LoadCredential=NAME:...)
    token: str | None = field(default=None, repr=False)
    timeout: float = 30.0   # seconds for a whole request: connect, send, the answer (sinks/deadline.py)
    ca_bundle: str | None = None
    github: GithubPush = field(default_factory=GithubPush)
    syntax: str = "tracker"   # the grammar of references (refsyntax.py): tracker or redmine
    keywords: Keywords = field(default_factory=Keywords)
    redmine: RedmineSettings = field(default_factory=RedmineSettings)

    @property
    def destination(self) -> str:
        """What identifies where commits go (for the ledger): api and base URL, never the token."""
        return f"{self.api} {self.url.rstrip('/')}"


@dataclass(frozen=True)
class Retry:
    min_backoff: float = 30.0
    max_backoff: float = 3600.0
    max_age: float = 604800.0


@dataclass(frozen=True)
class RepoRule:
    path: str
    url: str | None = None


MAX_CONCURRENCY = 32


@dataclass(frozen=True)
class AgentSettings:
    """``agent``: how the background agent is run (the worker itself is agent.Agent)."""
    autostart: bool = True
    log_file: str | None = None
    # Where the agent logs: file (log_file), stderr, journald; None: as fits how it was started
    # (context.log_destination).
    log: str | None = None
    # Requests in flight at once (each on its own keep-alive connection); a story's events still
    # go one at a time, in commit order (agent/order.py).
    concurrency: int = 4


@dataclass(frozen=True)
class Config:
    spool_dir: str = field(default_factory=default_spool_dir)
    spool_group: str | None = None
    tracker: Tracker = field(default_factory=Tracker)
    retry: Retry = field(default_factory=Retry)
    repos: tuple[RepoRule, ...] = ()
    agent: AgentSettings = field(default_factory=AgentSettings)
    svn_reader: str = "svnlook"
    svn_commit_id: str = "revision"
    branches: tuple[str, ...] = ("*",)
    tags: bool = False
    reverts: str = "link"     # link: a revert links its stories, no state changes; ignore: not sent
    # once: a story hears of a change once, whatever amends, rebases and cherry-picks copy it
    # (changes.py); every: each new commit is sent (a rebase comments again).
    rewrites: str = "once"
    path: str | None = None   # the file this came from, if any

    @property
    def log_file(self) -> str:
        return self.agent.log_file or os.path.join(self.spool_dir, "agent.log")

    def link_rules(self) -> list[dict[str, str | None]]:
        """``repos`` as links.commit_url takes them."""
        return [{"path": r.path, "url": r.url} for r in self.repos]

    def read_token(self) -> str | None:
        """The token, from token_env, token_credential (under systemd), token_file or token (in
        that order of preference)."""
        t = self.tracker
        if t.token_env:
            value = os.environ.get(t.token_env, "").strip()
            if not value:
                raise ConfigError(f"tracker.token_env: environment variable {t.token_env} is empty or unset;"
                                  " export it in the agent's environment or use tracker.token_file")
            return value
        credential = self.token_credential_path()
        if credential is not None:
            return _read_token_file("tracker.token_credential", credential)
        if t.token_file:
            try:
                return _read_token_file("tracker.token_file", t.token_file)
            except ConfigError as exc:
                directory = os.environ.get("CREDENTIALS_DIRECTORY")
                if t.token_credential and directory:
                    raise ConfigError(f"tracker.token_credential: no credential {t.token_credential} in"
                                      f" {directory}, and {exc}; or give the service the credential with"
                                      f" LoadCredential={t.token_credential}:/path/to/token in its unit") from None
                raise
        return t.token

    def token_credential_path(self) -> str | None:
        """Where systemd put the credential tracker.token_credential names: in
        ``$CREDENTIALS_DIRECTORY`` (set for a service with LoadCredential=). None without that
        setting, or outside such a service when tracker.token_file is there to fall back on."""
        name = self.tracker.token_credential
        if not name:
            return None
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if directory:
            path = os.path.join(directory, name)
            if os.path.exists(path) or not self.tracker.token_file:
                return path
            return None    # another service's credentials (a hook run by it): token_file
        if self.tracker.token_file:
            return None    # not a service: `hookagent flush` by hand, a hook's agent
        raise ConfigError(f"tracker.token_credential: $CREDENTIALS_DIRECTORY is not set: only a systemd"
                          f" service with LoadCredential={name}:/path/to/token gets it; run the agent as"
                          " that service, or also set tracker.token_file for agents started otherwise")


def _read_token_file(key: str, path: str) -> str:
    """The token in ``path`` (the file tracker.token_file names, or a systemd credential), with a
    warning when group or others may read it."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError as exc:
        if key == "tracker.token_credential":
            name = os.path.basename(path)
            raise ConfigError(f"{key}: cannot read {path} ({exc.strerror}); give the service the credential"
                              f" with LoadCredential={name}:/path/to/token in its unit") from None
        raise ConfigError(f"{key}: cannot read {path} ({exc.strerror});"
                          " create it (mode 0600) with the API token on one line") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warn(f"{key}: {path} is readable by group or others; run: chmod 600 {path}")
    if not value:
        raise ConfigError(f"{key}: {path} is empty; put the API token in it")
    return value


# ---------------------------------------------------------------- loading

_SCHEMA: dict[str, Any] = {
    "spool_dir": str, "spool_group": str,
    "tracker": {"url": str, "api": str, "token_file": str, "token_env": str, "token": str,
                "token_credential": str,
                "timeout": float, "ca_bundle": str,
                "github": {"format": str, "max_commits_per_request": int},
                "syntax": str, "keywords": {"refs": list, "finished": list, "delivered": list},
                "redmine": {"statuses": dict, "authors": dict, "authors_file": str}},
    "retry": {"min_backoff": float, "max_backoff": float, "max_age": float},
    "repos": list,
    "agent": {"autostart": bool, "log_file": str, "log": str, "concurrency": int},
    "branches": list, "tags": bool, "reverts": str, "rewrites": str,
    "svn": {"reader": str, "commit_id": str},
}


def load(explicit: str | None = None) -> Config:
    path = find_config(explicit)
    if path is None:
        return Config()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}; pass an existing file with --config") from None
    return parse(text, path)


def parse(text: str, path: str | None = None) -> Config:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        pos = f" line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path or 'config'}:{pos} is not valid YAML ({getattr(exc, 'problem', exc)});"
                          " fix the syntax") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping of keys at the top level")
    data = _check(data, _SCHEMA, "")
    base = os.path.dirname(path) if path else os.getcwd()

    def rel(p: str | None) -> str | None:
        return None if p is None else os.path.normpath(os.path.join(base, os.path.expanduser(p)))

    tr = data.get("tracker", {})
    api = tr.get("api", "v3")
    if api not in API_CHOICES:
        raise ConfigError(f"tracker.api: {api!r} is not one of {', '.join(API_CHOICES)}")
    url = tr.get("url", Tracker.url)
    if isinstance(url, str) and "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        # Credentials in the URL would be stored and shown with it (the destination names entries,
        # state and the ledger): refused, and never echoed.
        raise ConfigError("tracker.url: holds credentials (user:password@host); hookagent does not"
                          " keep them in a URL: remove them, and put the API token in tracker.token_file"
                          " (or tracker.token_env)")
    if api != "stdout" and not (url.startswith("https://") or url.startswith("http://")):
        raise ConfigError(f"tracker.url: expected an http(s) base URL like https://www.pivotaltracker.com, got {url!r}")
    if url.startswith("http://") and not _is_loopback(url):
        warn("tracker.url: plain http sends the token unencrypted; use https")
    if tr.get("token") is not None:
        warn("tracker.token: a token written in the config file is discouraged; use tracker.token_file or token_env")
    token_file = tr.get("token_file")
    if token_file is not None and "$" in token_file:
        # systemd's way to hand over a secret is a file in $CREDENTIALS_DIRECTORY; we expand no
        # variable in a path: the credential has a key of its own.
        raise ConfigError(f"tracker.token_file: {token_file!r} holds a $ variable, which is not expanded; for a"
                          " systemd credential (LoadCredential=NAME:/path) write tracker.token_credential: NAME")
    credential = tr.get("token_credential")
    if credential is not None and (not credential or "/" in credential or credential in (".", "..")):
        raise ConfigError(f"tracker.token_credential: {credential!r} is not a credential name; write the NAME of"
                          " the unit's LoadCredential=NAME:/path/to/token (no slash)")
    timeout = tr.get("timeout", 30.0)
    if timeout <= 0:
        raise ConfigError("tracker.timeout: must be a positive number of seconds")
    tracker = Tracker(url=url.rstrip("/"), api=api, token_file=rel(token_file),
                      token_env=tr.get("token_env"), token=tr.get("token"), token_credential=credential,
                      timeout=timeout,
                      ca_bundle=rel(tr.get("ca_bundle")), github=_github(tr.get("github"), api),
                      syntax=_syntax(tr.get("syntax"), api), keywords=_keywords(tr.get("keywords")),
                      redmine=_redmine(tr.get("redmine"), api, rel))

    rt = data.get("retry", {})
    retry = Retry(**{k: float(v) for k, v in rt.items()})
    if retry.min_backoff <= 0 or retry.max_backoff < retry.min_backoff:
        raise ConfigError("retry: need 0 < min_backoff <= max_backoff")
    if retry.max_age <= 0:
        raise ConfigError("retry.max_age: must be a positive number of seconds")

    repos = []
    for i, item in enumerate(data.get("repos", [])):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise ConfigError(f"repos[{i}]: expected a mapping with at least 'path: <glob>'")
        extra = set(item) - {"path", "url"}
        if extra:
            warn(f"repos[{i}]: unknown key(s) {', '.join(sorted(extra))} ignored")
        if item.get("url") is not None and not isinstance(item["url"], str):
            raise ConfigError(f"repos[{i}].url: expected a URL template string")
        repos.append(RepoRule(path=os.path.expanduser(item["path"]), url=item.get("url")))

    ag = data.get("agent", {})
    log = ag.get("log")
    if log is not None and log not in LOG_CHOICES:
        raise ConfigError(f"agent.log: {log!r} is not one of {', '.join(LOG_CHOICES)}; leave it out to log"
                          " where fits how the agent was started (journald under systemd, stderr for"
                          " `hookagent run` elsewhere, the log file for agents the hooks start)")
    concurrency = ag.get("concurrency", AgentSettings.concurrency)
    if isinstance(concurrency, bool) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigError(f"agent.concurrency: {concurrency} is not between 1 and {MAX_CONCURRENCY}; it is how many"
                          " requests the agent keeps in flight at once (default 4, 1 sends one at a time)")
    agent = AgentSettings(autostart=ag.get("autostart", True), log_file=rel(ag.get("log_file")), log=log,
                          concurrency=concurrency)
    branches = data.get("branches", ["*"])
    if not branches or not all(isinstance(b, str) and b for b in branches):
        raise ConfigError("branches: expected a list of branch name globs, like [main, 'release/*']")
    sv = data.get("svn", {})
    if sv.get("reader", "svnlook") not in ("svnlook", "pysvn", "auto"):
        raise ConfigError("svn.reader: expected svnlook, pysvn or auto")
    if sv.get("commit_id", "revision") not in ("revision", "uuid@rev"):
        raise ConfigError("svn.commit_id: expected revision or uuid@rev")
    reverts = data.get("reverts", "link")
    if reverts not in ("link", "ignore"):
        raise ConfigError(f"reverts: {reverts!r} is not one of link, ignore (link: a commit made by git revert"
                          " links its stories without changing their state; ignore: it is not sent)")
    rewrites = data.get("rewrites", "once")
    if rewrites not in REWRITES_CHOICES:
        raise ConfigError(f"rewrites: {rewrites!r} is not one of {', '.join(REWRITES_CHOICES)}; once (the default)"
                          " tells a story of a change once, whatever amends, rebases and cherry-picks copy it;"
                          " every sends each new commit")
    spool_dir = rel(data.get("spool_dir")) or default_spool_dir()
    return Config(svn_reader=sv.get("reader", "svnlook"), svn_commit_id=sv.get("commit_id", "revision"),
                  spool_dir=spool_dir, spool_group=data.get("spool_group"), tracker=tracker,
                  retry=retry, repos=tuple(repos), agent=agent, branches=tuple(branches),
                  tags=data.get("tags", False), reverts=reverts, rewrites=rewrites,
                  path=os.path.abspath(path) if path else None)


def _github(data: dict | None, api: str) -> GithubPush:
    if not data:
        return GithubPush()
    if api != "github-push":
        warn("tracker.github: ignored unless tracker.api is github-push")
    fmt = data.get("format", GithubPush.format)
    if fmt not in GITHUB_FORMATS:
        raise ConfigError(f"tracker.github.format: {fmt!r} is not one of {', '.join(GITHUB_FORMATS)}"
                          " (form: a payload= form field, as Tracker's github_commits takes; json: the"
                          " payload as the JSON body)")
    most = data.get("max_commits_per_request", GithubPush.max_commits_per_request)
    if isinstance(most, bool) or not isinstance(most, int) or not 1 <= most <= GITHUB_MAX_COMMITS:
        raise ConfigError(f"tracker.github.max_commits_per_request: expected a whole number from 1 to"
                          f" {GITHUB_MAX_COMMITS}, got {most!r}")
    return GithubPush(format=fmt, max_commits_per_request=most)


def _syntax(value: str | None, api: str) -> str:
    from hookagent.refsyntax import SYNTAXES
    syntax = value or ("redmine" if api == "redmine" else "tracker")
    if syntax not in SYNTAXES:
        raise ConfigError(f"tracker.syntax: {syntax!r} is not one of {', '.join(SYNTAXES)} (tracker:"
                          " [fixes #12]; redmine: fixes #12, refs #13)")
    return syntax


def _keywords(data: dict | None) -> Keywords:
    if not data:
        return Keywords()
    out = {}
    for key in ("refs", "finished", "delivered"):
        words = data.get(key)
        if words is None:
            continue
        if not all(isinstance(w, str) and w and (w == "*" or not any(c.isspace() or c in "#:," for c in w))
                   for w in words):
            raise ConfigError(f"tracker.keywords.{key}: expected a list of single words like [refs, references],"
                              f" got {words!r}")
        if key != "refs" and "*" in words:
            raise ConfigError(f"tracker.keywords.{key}: '*' only means something among refs")
        out[key] = tuple(words)
    return Keywords(**out)


def _redmine(data: dict | None, api: str, rel) -> RedmineSettings:
    if not data:
        return RedmineSettings()
    if api != "redmine":
        warn("tracker.redmine: ignored unless tracker.api is redmine")
    statuses = data.get("statuses") or {}
    from hookagent.model import DELIVERED, FINISHED
    for state, status in statuses.items():
        if state not in (FINISHED, DELIVERED):
            raise ConfigError(f"tracker.redmine.statuses: {state!r} is not a state; use finished and delivered")
        if isinstance(status, bool) or not isinstance(status, (int, str)) or status == "":
            raise ConfigError(f"tracker.redmine.statuses.{state}: expected a status id or name, got {status!r}")
    authors = dict(data.get("authors") or {})
    if data.get("authors_file"):
        authors = {**_authors_file(rel(data["authors_file"])), **authors}
    for email, login in authors.items():
        if not isinstance(email, str) or not isinstance(login, str) or not login.strip() \
                or not login.isprintable():
            raise ConfigError(f"tracker.redmine.authors: expected e-mail: login pairs, got {email!r}: {login!r}")
    return RedmineSettings(statuses=tuple(statuses.items()),
                           authors=tuple((e.strip().lower(), v.strip()) for e, v in authors.items()))


def _authors_file(path: str) -> dict:
    """A YAML mapping of e-mail: login, or lines of ``email login`` (``#`` comments)."""
    import yaml
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ConfigError(f"tracker.redmine.authors_file: cannot read {path} ({exc.strerror}); create it"
                          " with one `email: login` per line") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if isinstance(data, dict):
        return data
    pairs = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(":", " ").split()
        if len(parts) != 2:
            raise ConfigError(f"tracker.redmine.authors_file: {path} line {n}: expected `email: login`")
        pairs[parts[0]] = parts[1]
    return pairs


def _is_loopback(url: str) -> bool:
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def _check(data: dict, schema: dict, prefix: str) -> dict:
    out = {}
    for key, value in data.items():
        where = f"{prefix}{key}"
        if key not in schema:
            warn(f"{where}: unknown key ignored (check the spelling against config.example.yaml)")
            continue
        want = schema[key]
        if value is None:
            continue
        if isinstance(want, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a mapping")
            out[key] = _check(value, want, where + ".")
        elif want is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where}: expected a number, got {value!r}")
            out[key] = float(value)
        elif want is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: expected true or false, got {value!r}")
            out[key] = value
        elif not isinstance(value, want):
            raise ConfigError(f"{where}: expected {want.__name__}, got {type(value).__name__}")
        else:
            out[key] = value
    return out

