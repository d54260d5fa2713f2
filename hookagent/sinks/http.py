"""Posting a body to a tracker over HTTP, and what each answer means for the queue.

Shared by every HTTP sink.  The rules (the README's table of server answers says the same):

* 2xx: delivered.
* connection errors, timeouts, 408, 425, 429, 5xx: RETRY (the server's Retry-After kept).
  ``timeout`` (tracker.timeout) bounds the whole request: connecting, sending the body, the
  answer's headers and the part of its body we read (sinks/deadline.py); a request still running
  then is cut off and retried, unless a whole 2xx head had arrived (accepted: only the text of the
  answer was lost).
* 401/403 (token refused), 404 (no such endpoint), any 3xx (never followed: the token would
  travel with it), TLS verification failure: HOLD: a person has to fix the configuration.
* any other 4xx: DEAD: this body will never be accepted; status and the start of the answer kept.

Every DeliveryError message is one line, says what to do, and never contains the token (it is
scrubbed from anything foreign we quote, the server's answer included).
"""
from __future__ import annotations

import os
import threading
import time
from urllib.parse import urlsplit, urlunsplit

import requests

from hookagent import __version__
from hookagent.errors import DEAD, HOLD, RETRY, DeliveryError
from hookagent.model import Commit
from hookagent.backoff import parse_retry_after
from hookagent.sinks import deadline

USER_AGENT = f"hookagent/{__version__}"
BODY_KEPT = 2048            # bytes of a refusal kept with a dead entry
_READ_AT_MOST = 64 * 1024   # bytes of any answer we read; beyond that the connection is dropped
_RETRY_STATUSES = frozenset({408, 425, 429})


class HttpSink:
    """Base of the HTTP sinks: subclasses set ``name``, ``path``, ``content_type``, ``accept``
    (on the class, or on the instance before ``HttpSink.__init__``) and implement ``render``."""

    name = "http"
    path = "/"
    content_type = "application/octet-stream"
    accept = "*/*"
    token_header = "X-TrackerToken"
    concurrent = True
    """Safe to call from several threads at once (the agent's lanes): each thread sends on a
    keep-alive session of its own."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 30.0,
                 verify: bool | str = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.endpoint = self.base_url + self.path
        self._token = token
        # The whole request must end within timeout (the deadline's watchdog sees to it); each
        # socket operation keeps it as its own limit too, in case the watchdog cannot act.
        self._deadline = float(timeout)
        self._timeout = (self._deadline, self._deadline)  # (connect, read)
        # The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read once, here, as
        # requests would read it: with trust_env on, requests re-reads it on every request,
        # and the agent sends thousands (benchmarks/bench_delivery.py measures the difference).
        self._proxies = requests.utils.get_environ_proxies(self.endpoint)
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._verify = verify
        # One keep-alive session per thread that sends (the agent's lanes), made on first use;
        # a thread that is done gives it back (release_session) for the next one.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []     # every session made, to close
        self._idle: list[requests.Session] = []         # given back, for the next thread
        self._sessions_lock = threading.Lock()

    @property
    def _session(self) -> requests.Session:
        """This thread's session: its own connection to the tracker, kept alive between requests."""
        session = getattr(self._local, "session", None)
        if session is None:
            with self._sessions_lock:
                session = self._idle.pop() if self._idle else None
            if session is None:
                session = requests.Session()
                session.trust_env = False
                adapter = deadline.DeadlineAdapter()
                session.mount("https://", adapter)
                session.mount("http://", adapter)
                with self._sessions_lock:
                    self._sessions.append(session)
            self._local.session = session
            self._local.template = None
        return session

    def release_session(self) -> None:
        """This thread sends no more: its session (and its open connection) goes to the next."""
        session = getattr(self._local, "session", None)
        if session is not None:
            self._local.session = None
            with self._sessions_lock:
                self._idle.append(session)

    probe_method = "HEAD"
    probe_path: str | None = None
    """What :meth:`probe` asks: a read-only request of the API where it has one (subclasses),
    else a HEAD of the endpoint (``None``: the endpoint itself)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {_display(self.endpoint)}>"

    def render(self, commit: Commit) -> bytes:
        raise NotImplementedError

    def send(self, commit: Commit) -> None:
        self.post(self.render(commit))

    def close(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions, self._idle = self._sessions, [], []
        for session in sessions:
            session.close()
        self._local = threading.local()

    # ------------------------------------------------------------------ the request
    def post(self, body: bytes, extra_headers: dict[str, str] | None = None) -> None:
        """POST ``body`` to the endpoint; return on 2xx, raise DeliveryError otherwise."""
        headers = {self.token_header: self._token, "Content-Type": self.content_type,
                   "Accept": self.accept, "User-Agent": USER_AGENT, **(extra_headers or {})}
        where = _display(self.endpoint)
        # Prepared once, copied per request: Session.request would merge the session's settings,
        # cookies and the environment again for every request, and they never change here.
        template = getattr(self._local, "template", None)
        if template is None:
            template = self._local.template = self._session.prepare_request(
                requests.Request("POST", self.endpoint, headers={"Accept": self.accept}))
        prepared = template.copy()
        prepared.headers.update(headers)
        prepared.prepare_body(body, None)
        status, answer_headers, answer = self._exchange(prepared, where)
        if status is None:
            return   # accepted; only the confirmation text was lost
        error = classify_response(status, answer_headers, answer, where)
        if error is not None:
            raise self._scrubbed(error)

    def exchange(self, method: str, url: str, body: bytes | None = None,
                 extra_headers: dict[str, str] | None = None) -> tuple[int | None, dict, bytes]:
        """One request of ``method`` to ``url`` with the token, under the deadline: (status,
        headers, the start of the answer), status None for a 2xx whose text was lost. Raises
        DeliveryError (RETRY, HOLD) when no whole answer came; the caller judges the status."""
        headers = {self.token_header: self._token, "Accept": self.accept, "User-Agent": USER_AGENT,
                   **({"Content-Type": self.content_type} if body is not None else {}),
                   **(extra_headers or {})}
        request = requests.Request(method, url, headers=headers, data=body)
        return self._exchange(self._session.prepare_request(request), _display(url))

    def _exchange(self, prepared: requests.PreparedRequest, where: str) -> tuple[int | None, dict, bytes]:
        with deadline.running(self._deadline) as request:
            try:
                response = self._session.send(prepared, timeout=self._timeout, verify=self._verify,
                                              allow_redirects=False, stream=True, proxies=self._proxies)
            except (requests.exceptions.RequestException, OSError) as exc:
                raise self._scrubbed(self._no_answer(exc, where, request.expired)) from None
            if request.expired:
                # A head the watchdog cut short ends at the shut-down socket as if complete (even
                # "200 OK" and no more headers): nothing in it can be trusted. (A head that did
                # arrive as the deadline passed is sent again: at most one duplicate, as when a
                # connection drops then.)
                response.close()
                raise self._scrubbed(timed_out(where, self._deadline))
            accepted = 200 <= response.status_code < 300
            try:
                answer = _read_some(response)
            except requests.exceptions.RequestException as exc:
                if accepted:
                    return None, {}, b""   # accepted; only the confirmation text was lost
                raise self._scrubbed(self._no_answer(exc, where, request.expired)) from None
            finally:
                response.close()
        if request.expired and not accepted:
            # An answer read to the end of a connection the watchdog shut down is cut short.
            raise self._scrubbed(timed_out(where, self._deadline))
        return response.status_code, response.headers, answer

    def probe(self) -> tuple[str, int]:
        """One authenticated request that changes nothing (`hookagent doctor`): ``probe_method``
        of ``probe_path``, with the token, the deadline, the proxies and the trust of a delivery.
        Returns (what was asked, the status) when the tracker is there and takes the token: a
        2xx, or 405 to a HEAD (an endpoint that takes only POSTs; the token is then not checked).
        Raises DeliveryError by the rules above otherwise (401/403, 404, 3xx, TLS, no answer,
        timeout), the token scrubbed from it."""
        url = self.base_url + (self.probe_path or self.path)
        where = _display(url)
        asked = f"{self.probe_method} {where}"
        request = requests.Request(self.probe_method, url, headers={
            self.token_header: self._token, "Accept": self.accept, "User-Agent": USER_AGENT})
        prepared = self._session.prepare_request(request)
        with deadline.running(self._deadline) as timer:
            try:
                response = self._session.send(prepared, timeout=self._timeout, verify=self._verify,
                                              allow_redirects=False, stream=True, proxies=self._proxies)
            except (requests.exceptions.RequestException, OSError) as exc:
                raise self._scrubbed(self._no_answer(exc, where, timer.expired)) from None
            try:
                answer = b"" if self.probe_method == "HEAD" else _read_some(response)
            except requests.exceptions.RequestException as exc:
                raise self._scrubbed(self._no_answer(exc, where, timer.expired)) from None
            finally:
                response.close()
        if timer.expired:
            raise self._scrubbed(timed_out(where, self._deadline))
        status = response.status_code
        if self.probe_method == "HEAD" and status == 405:
            return asked, status
        error = classify_response(status, response.headers, answer, where)
        if error is not None:
            raise self._scrubbed(error)
        return asked, status

    def _no_answer(self, exc: Exception, where: str, expired: bool) -> DeliveryError:
        """The error for a request that ended without a whole answer."""
        if expired:
            return timed_out(where, self._deadline)   # whatever the cut-off socket raised
        if isinstance(exc, requests.exceptions.RequestException):
            return classify_exception(exc, where, self._deadline)
        # requests checks the CA bundle (tracker.ca_bundle, REQUESTS_CA_BUNDLE) and the client
        # certificate as it sends: a local TLS setup that does not hold, never the entry's fault.
        return DeliveryError(
            f"cannot set up TLS for {where} ({exc}); fix tracker.ca_bundle, REQUESTS_CA_BUNDLE or"
            " CURL_CA_BUNDLE, then run `hookagent retry --held`", HOLD)

    def _scrubbed(self, error: DeliveryError) -> DeliveryError:
        """The same error with the token removed from its message and body, wherever it hid."""
        message = scrub(str(error), self._token)
        body = scrub(error.body, self._token) if error.body is not None else None
        return DeliveryError(message, error.kind, retry_after=error.retry_after,
                             status=error.status, body=body)


def _read_some(response: requests.Response) -> bytes:
    """Up to _READ_AT_MOST bytes of the answer; reading it all keeps the connection reusable."""
    data = bytearray()
    for chunk in response.iter_content(8192):
        data += chunk
        if len(data) >= _READ_AT_MOST:
            break
    return bytes(data)


# ---------------------------------------------------------------------- classification
def classify_response(status: int, headers, body: bytes, where: str,
                      now: float | None = None) -> DeliveryError | None:
    """None for 2xx; otherwise the DeliveryError the agent should file."""
    if 200 <= status < 300:
        return None
    text = body[:BODY_KEPT].decode("utf-8", errors="replace")
    gist = _one_line(text, 200)
    said = f", saying: {gist}" if gist else ""
    if 300 <= status < 400:
        location = headers.get("Location")
        to = f" to {_display(location)}" if location else " (no Location given)"
        return DeliveryError(
            f"the tracker at {where} answered {status}, redirecting{to}; redirects are never followed"
            " (the token would go with them): set tracker.url to the address that answers directly,"
            " then run `hookagent retry --held`", HOLD, status=status, body=text)
    if status in (401, 403):
        return DeliveryError(
            f"the tracker refused the token ({status} from {where}): check tracker.token_file,"
            " then run `hookagent retry --held`", HOLD, status=status, body=text)
    if status == 404:
        return DeliveryError(
            f"the endpoint does not exist (404 from {where}): check tracker.url and tracker.api,"
            " then run `hookagent retry --held`", HOLD, status=status, body=text)
    if status in _RETRY_STATUSES or status >= 500 or status < 200:
        retry_after = parse_retry_after(headers.get("Retry-After"), time.time() if now is None else now)
        wait = f", asks to wait {retry_after:.0f}s" if retry_after is not None else ""
        return DeliveryError(
            f"the tracker is not accepting commits right now ({status} from {where}{wait}{said});"
            " hookagent will retry with backoff", RETRY, retry_after=retry_after, status=status, body=text)
    return DeliveryError(
        f"the tracker rejected this request for good ({status} from {where}{said}); it is kept in dead/:"
        " inspect it with `hookagent status`, then re-queue with `hookagent retry --dead` if it was"
        " a server-side problem", DEAD, status=status, body=text)


def classify_exception(exc: requests.exceptions.RequestException, where: str,
                       timeout: float | None = None) -> DeliveryError:
    """The DeliveryError for a request that got no HTTP answer."""
    cause = _root_cause(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return DeliveryError(
            f"TLS verification failed for {where} ({cause}): fix the server's certificate or point"
            " tracker.ca_bundle at the CA that signed it, then run `hookagent retry --held`", HOLD)
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)):
        return DeliveryError(
            f"cannot build a request for {where} ({cause}): check tracker.url and the token file,"
            " then run `hookagent retry --held`", HOLD)
    if isinstance(exc, requests.exceptions.Timeout):
        what = "accept a connection" if isinstance(exc, requests.exceptions.ConnectTimeout) else "answer"
        return timed_out(where, timeout, what)
    return DeliveryError(
        f"cannot reach the tracker at {where} ({cause}); hookagent will retry: check the network,"
        " proxy settings or tracker.url if this persists", RETRY)


def timed_out(where: str, timeout: float | None, what: str = "answer") -> DeliveryError:
    """The DeliveryError for a request that ran out of time (tracker.timeout)."""
    within = f" within {timeout:g}s" if timeout else " in time"
    return DeliveryError(
        f"the tracker at {where} did not {what}{within}; hookagent will retry"
        " (raise tracker.timeout if this keeps happening)", RETRY)


# ---------------------------------------------------------------------- text helpers
def scrub(text: str, secret: str) -> str:
    """``text`` with ``secret`` replaced where it stands on its own (a header value, a URL
    parameter, a body that echoes it), never inside another word: a short token must neither
    damage ordinary text nor show, by where it was cut out, which letters it holds."""
    if not secret:
        return text
    import re
    edge = r"A-Za-z0-9_\-"
    return re.sub(rf"(?<![{edge}]){re.escape(secret)}(?![{edge}])", "[token]", text)


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "\u2026"


def _display(url: str) -> str:
    """``url`` without user:password@, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _one_line(url, 200)
    if parts.username is None and parts.password is None:
        return _one_line(url, 200)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return _one_line(urlunsplit(parts._replace(netloc=netloc)), 200)


def _root_cause(exc: BaseException) -> str:
    """The most specific readable reason inside requests' and urllib3's wrappers."""
    seen: set[int] = set()
    current: BaseException | None = exc
    best = ""
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            best = current.strerror
        elif not best and type(current).__module__.startswith("ssl"):
            best = str(current)
        nested = getattr(current, "reason", None)
        if not isinstance(nested, BaseException):
            nested = next((a for a in current.args if isinstance(a, BaseException)), None)
        current = nested or current.__cause__ or current.__context__
    return _one_line(best or type(exc).__name__, 200)
