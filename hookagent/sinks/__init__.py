"""Where commits go: one small interface, three implementations, one factory.

A sink renders a :class:`~hookagent.model.Commit` into the exact request body (``render``) and
delivers it (``send``): ``send`` returns on success and raises
:class:`~hookagent.errors.DeliveryError` (kind RETRY, HOLD or DEAD) otherwise.

This module does not import requests: the factory imports only the implementation it builds.
"""
from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Protocol

from hookagent.errors import ConfigError

if TYPE_CHECKING:
    from hookagent.model import Commit

API_CHOICES = ("v3", "v5", "github-push", "redmine", "stdout")   # tracker.api: one sink each
GITHUB_FORMATS = ("form", "json")                     # tracker.github.format


class Sink(Protocol):
    name: str
    content_type: str

    def render(self, commit: Commit) -> bytes:
        """The exact body ``send`` would deliver for ``commit``."""
        ...

    def send(self, commit: Commit) -> None:
        """Deliver ``commit``, or raise DeliveryError saying whether to retry, hold or give up."""
        ...

    def close(self) -> None:
        ...


def make_sink(api: str, url: str, token: str | None, *, timeout: float = 30.0,
              verify: bool | str = True, stream: IO[str] | None = None, github_format: str = "form",
              max_commits_per_request: int = 100, redmine: dict | None = None) -> Sink:
    """The sink for ``tracker.api``. ``url`` is the tracker's base URL; the sink adds the API path.

    ``verify`` is True (system or REQUESTS_CA_BUNDLE trust) or the path of a CA bundle;
    ``stream`` is where the stdout sink writes (default sys.stdout);
    ``github_format`` (form|json) and ``max_commits_per_request`` are the github-push sink's;
    ``redmine`` (syntax, statuses, authors) the redmine sink's.
    """
    if api == "stdout":
        from hookagent.sinks.stdout import StdoutSink
        return StdoutSink(stream)
    if api not in API_CHOICES:
        raise ConfigError(f"tracker.api: unknown API {api!r}; choose one of {', '.join(API_CHOICES)}")
    _check_http_settings(url, token, timeout, verify)
    assert token is not None
    if api == "github-push":
        from hookagent.sinks.github_push import GithubPushSink
        return GithubPushSink(url, token, timeout=timeout, verify=verify,
                              format=github_format, max_commits=max_commits_per_request)
    if api == "redmine":
        from hookagent.sinks.redmine import RedmineSink
        return RedmineSink(url, token, timeout=timeout, verify=verify, **(redmine or {}))
    from hookagent.sinks.tracker import TrackerSink
    return TrackerSink(api, url, token, timeout=timeout, verify=verify)


def _check_http_settings(url: str, token: str | None, timeout: float, verify: bool | str) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) \
            or not url.split("://", 1)[1].strip("/"):
        raise ConfigError(f"tracker.url: expected an http(s) base URL like"
                          f" https://www.pivotaltracker.com, got {url!r}")
    if not token:
        raise ConfigError("tracker.token_file: no API token configured; put the token in a file"
                          " (mode 0600) named by tracker.token_file, or name a variable in tracker.token_env")
    # requests and http.client quote a bad header value in their errors: refuse it here, unquoted.
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise ConfigError("tracker.token_file: the API token contains spaces, line breaks or"
                          " non-ASCII characters; put only the token on one line")
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise ConfigError(f"tracker.timeout: expected a positive number of seconds, got {timeout!r}")
    if isinstance(verify, str) and not os.path.exists(verify):
        raise ConfigError(f"tracker.ca_bundle: {verify} does not exist; give the path of a PEM"
                          " CA bundle (file or c_rehash'd directory), or remove the key to use the system's")
