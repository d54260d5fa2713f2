"""Redmine's REST API: a note on each issue a commit references, and the configured status for a
state keyword. ``tracker.api: redmine``; the token is the API key, sent in ``X-Redmine-API-Key``
(never in a URL).

For each (commit, issue) one ``PUT {base}/issues/ID.json`` with
``{"issue": {"notes": ..., "status_id": ...}}``: the note (Redmine's textile) names the commit, its
link and its author, then the message in a ``<pre>`` block; ``status_id`` only where the
message asks for a state (refsyntax.py: ``fixes #12``) that ``tracker.redmine.statuses`` maps.

Before the first PUT (when the agent starts sending) the sink asks ``GET /users/current.json``
(the key's user: is it an admin, who may post as others) and, with statuses configured,
``GET /issue_statuses.json``: a name is resolved there and an id checked there, because Redmine
answers 204 to an unknown ``status_id`` and changes nothing. A status it does not have holds the
queue with the reason.

Outcomes, on top of sinks/http.py's rules: 401/403 hold; a missing issue (404) and a refused
update (422, the server's errors kept) are dead for that issue only: the commit's other issues
are still sent, then the entry goes to dead/ naming what was refused. 412 (an unknown login in
``X-Redmine-Switch-User``), and 403 for a switched user (one who may not update that issue), are
sent again as the key's user, and logged.

Progress per (commit, issue) is kept in the ledger, under the destination ``<destination>
notes`` with the ident ``<commit ident>#<issue>``: a commit retried after its third issue failed
does not post on the first two again. (A separate destination name keeps ``status``' counts of
commits sent as they were; the ledger gives the same durability and sharing between agents.)

Authors: ``tracker.redmine.authors`` maps a commit's e-mail to a login. With an admin key a
mapped author's note is posted as that user (``X-Redmine-Switch-User``); every note names the
author, so an unmapped one (posted as the key's user) is still credited.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from hookagent.errors import DEAD, HOLD, RETRY, DeliveryError
from hookagent.model import Commit, StoryRef
from hookagent.sinks.http import BODY_KEPT, HttpSink, classify_response
from hookagent.xmltext import clean_text

log = logging.getLogger("hookagent.agent")

NOTES = " notes"
"""Appended to the destination for the ledger's per-(commit, issue) marks."""


class RedmineSink(HttpSink):
    name = "redmine"
    path = "/issues.json"
    content_type = accept = "application/json"
    token_header = "X-Redmine-API-Key"
    probe_method, probe_path = "GET", "/users/current.json"
    concurrent = False   # one lane: its per-issue progress goes through the agent's ledger connection

    def __init__(self, base_url: str, token: str, *, syntax: Any, statuses: dict[str, int | str] | None = None,
                 authors: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(base_url, token, **kw)
        self.syntax = syntax
        self.wanted = dict(statuses or {})
        self.authors = {k.lower(): v for k, v in (authors or {}).items()}
        self.status_ids: dict[str, int] | None = None    # state -> id, once checked
        self.admin = False
        self.unknown_logins: set[str] = set()
        self._ledger = None
        self._notes_dest = ""

    def attach(self, ledger, destination: str) -> None:
        """Keep per-(commit, issue) progress in ``ledger`` (the agent calls this)."""
        self._ledger = ledger
        self._notes_dest = destination + NOTES

    # ------------------------------------------------------------------ what is sent
    def note(self, commit: Commit) -> str:
        """The note, in Redmine's textile: ``Commit "ID":LINK by AUTHOR (EMAIL):`` then the
        message as it was written, in a <pre> block."""
        link = f'"{commit.commit_id}":{commit.url}' if commit.url else commit.commit_id
        who = commit.author + (f" ({commit.email})" if commit.email else "")
        message = clean_text(commit.message).rstrip().replace("</pre>", "</pre >")
        return clean_text(f"Commit {link} by {who}:\n\n<pre>\n{message}\n</pre>")

    def body(self, commit: Commit, ref: StoryRef) -> dict:
        issue: dict[str, Any] = {"notes": self.note(commit)}
        if ref.state and self.status_ids and ref.state in self.status_ids:
            issue["status_id"] = self.status_ids[ref.state]
        return {"issue": issue}

    def render(self, commit: Commit) -> bytes:
        """The PUTs ``send`` would make, one JSON line each: ``{"issue": ID, "body": {...}}``."""
        lines = [json.dumps({"issue": ref.id, "body": self.body(commit, ref)}, ensure_ascii=False)
                 for ref in self.syntax.parse(commit.message)]
        return "\n".join(lines).encode("utf-8")

    # ------------------------------------------------------------------ sending
    def send(self, commit: Commit) -> None:
        self.check()
        refused: list[DeliveryError] = []
        for ref in self.syntax.parse(commit.message):
            ident = f"{commit.ident}#{ref.id}"
            if self._ledger is not None and self._ledger.is_sent(self._notes_dest, ident):
                continue
            try:
                self._put(commit, ref)
            except DeliveryError as exc:
                if exc.kind != DEAD:
                    raise
                log.error("issue #%d refused %s: %s", ref.id, commit.commit_id[:12], exc)
                refused.append(exc)
                continue
            if self._ledger is not None:
                self._ledger.mark_sent(self._notes_dest, ident)
        if refused:
            first = refused[0]
            rest = f" (and {len(refused) - 1} more issue(s))" if len(refused) > 1 else ""
            raise DeliveryError(f"{first}{rest}", DEAD, status=first.status,
                                body="\n".join(e.body or "" for e in refused)[:BODY_KEPT])

    def _put(self, commit: Commit, ref: StoryRef) -> None:
        url = f"{self.base_url}/issues/{ref.id}.json"
        where = f"{self.base_url}/issues/{ref.id}.json"
        body = json.dumps(self.body(commit, ref), ensure_ascii=False).encode("utf-8")
        login = self.authors.get(commit.email.strip().lower()) if commit.email else None
        switch = {"X-Redmine-Switch-User": login} if login and self.admin and login not in self.unknown_logins else {}
        status, headers, answer = self.exchange("PUT", url, body, switch)
        if status == 412 and switch:
            self.unknown_logins.add(login or "")
            log.warning("Redmine has no user %r (tracker.redmine.authors, for %s): notes of that author go"
                        " as the key's user, naming the author", login, commit.email)
            status, headers, answer = self.exchange("PUT", url, body)
        elif status == 403 and switch:
            # The author's user may not update this issue (not a member of its project): the note
            # goes as the key's user, naming the author; a 403 for the key itself still holds.
            log.warning("Redmine user %r may not update issue #%d (403); the note of %s goes as the key's"
                        " user, naming the author", login, ref.id, commit.commit_id[:12])
            status, headers, answer = self.exchange("PUT", url, body)
        if status is None:
            return
        text = answer[:BODY_KEPT].decode("utf-8", "replace")
        if status == 404:
            raise DeliveryError(f"Redmine has no issue #{ref.id} (404 from {where}); the commit's other issues"
                                " are sent; it is kept in dead/: `hookagent retry --dead` once the issue"
                                " exists", DEAD, status=status, body=text)
        if status == 422:
            raise DeliveryError(f"Redmine refused the update of issue #{ref.id} (422 from {where}, saying:"
                                f" {_errors(text)}); it is kept in dead/ with the answer", DEAD,
                                status=status, body=text)
        if status == 403:
            raise DeliveryError(f"Redmine refused the key's user the update of issue #{ref.id} (403 from {where}):"
                                " make that user a member of the issue's project with a role that may add"
                                " notes (and change the status), then run `hookagent retry --held`", HOLD,
                                status=status, body=text)
        error = classify_response(status, headers, answer, where)
        if error is not None:
            raise self._scrubbed(error)

    # ------------------------------------------------------------------ when the agent starts
    def check(self) -> None:
        """Once per agent: the key's user, and the configured statuses resolved (names) and
        checked (ids) against the server. Raises HOLD when one does not exist."""
        if self.status_ids is not None:
            return
        me = self._get("/users/current.json")
        self.admin = bool((me.get("user") or {}).get("admin"))
        resolved: dict[str, int] = {}
        if self.wanted:
            listed = self._get("/issue_statuses.json").get("issue_statuses") or []
            by_id = {s["id"]: s["name"] for s in listed}
            by_name = {str(s["name"]).lower(): s["id"] for s in listed}
            have = ", ".join(f"{i} {n}" for i, n in by_id.items())
            missing = []
            for state, wanted in self.wanted.items():
                found = wanted if isinstance(wanted, int) and wanted in by_id else None
                if isinstance(wanted, str):
                    found = by_name.get(wanted.strip().lower())
                    if found is None and wanted.strip().isdigit() and int(wanted) in by_id:
                        found = int(wanted)
                if found is None:
                    missing.append(f"tracker.redmine.statuses.{state}: {wanted!r}")
                else:
                    resolved[state] = found
            if missing:
                raise DeliveryError(
                    f"Redmine at {self.base_url} has no such issue status ({'; '.join(missing)}; it has: {have});"
                    " fix the configuration, then run `hookagent retry --held`", HOLD)
        self.status_ids = resolved

    def checked(self) -> str:
        """What check() found, in words (for doctor)."""
        who = ("an admin's: notes of mapped authors go as them" if self.admin
               else "not an admin's: every note goes as the key's user")
        states = ", ".join(f"{state} -> status {sid}" for state, sid in (self.status_ids or {}).items())
        return f"the key is {who}; " + (states or "no statuses configured: notes only")

    def _get(self, path: str) -> dict:
        url = self.base_url + path
        status, headers, answer = self.exchange("GET", url)
        if status is None:
            raise DeliveryError(f"the answer of {url} was cut short; hookagent will retry", RETRY)
        error = classify_response(status, headers, answer, url)
        if error is not None:
            if status == 404:
                error = DeliveryError(f"{url} does not exist (404): is tracker.url Redmine's base URL, and"
                                      " its REST API on (Administration, Settings, API)? Then run"
                                      " `hookagent retry --held`", HOLD, status=404)
            raise self._scrubbed(error)
        try:
            data = json.loads(answer)
        except ValueError:
            raise DeliveryError(f"{url} did not answer JSON: is tracker.url Redmine's base URL? then run"
                                " `hookagent retry --held`", HOLD, status=status) from None
        return data if isinstance(data, dict) else {}


def _errors(text: str) -> str:
    try:
        errors = json.loads(text).get("errors")
    except (ValueError, AttributeError):
        errors = None
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)[:300]
    return " ".join(text.split())[:300] or "nothing"
