"""A local Tracker-compatible receiver for the demo, the tests and users trying hookagent.

Endpoints (the paths of Pivotal Tracker's source_commits API):

* ``POST /services/v3/source_commits``: ``Content-Type: application/xml`` (or ``text/xml``), body
  ``<source_commit><message/><author/><commit_id/><url/></source_commit>``; 200 with an XML
  ``<comments>`` document listing the comments created.
* ``POST /services/v5/source_commits``: ``Content-Type: application/json``, body
  ``{"source_commit": {"message", "author", "commit_id", "url"}}``; 200 with a JSON array of the
  comments created (Tracker's v5 comment resources, abridged).
* ``POST /services/v3/github_commits``: GitHub's push webhook payload (``tracker.api:
  github-push``), as a form field (``application/x-www-form-urlencoded``, exactly one field
  ``payload=<JSON>``) or as the body (``application/json``). Checked strictly against the fields
  GitHub documents for a push event (:func:`parse_github_push`); each commit in ``commits`` is
  then recorded like one source_commit (``api: "github-push"``, plus its ``ref``). 200 with a JSON
  array of the comments created. ``pushes()`` keeps every accepted payload.
* ``GET /services/v5/me`` (the token's user, Tracker's ``me`` resource, abridged) and ``GET
  /services/v3/activities?limit=N`` (v3's activity feed: the newest comments, as ``note_create``
  activities): Tracker's read-only endpoints that `hookagent doctor` asks to check the token; a
  wrong token is 403 as for a POST. A GET or HEAD of a POST endpoint is 405 (``Allow: POST``).
* ``GET /`` an HTML page of the stories; ``GET /api/stories`` and ``GET /api/received`` JSON.

Every POST needs the ``X-TrackerToken`` header: missing or wrong is 403 (v3: an XML ``<errors>``
document; v5 and github_commits: Tracker's JSON error, ``{"kind": "error", "code": "invalid_authentication", ...}``).
Parsing is strict, so a sink's mistakes show: wrong content type, malformed or non-UTF-8 body,
a DTD, a wrong root, unknown or repeated fields, a field that is not text, an empty ``message``
or ``commit_id`` are all 400 with a body saying what was wrong. ``author`` and ``url`` may be
left out. Unknown paths are 404. The GET pages need no token: this is a local tool.

Stories: with ``stories=None`` any story id a commit references is created on first sight;
with a list only those exist, and references to others are ignored (still 200, as Tracker
does); see :mod:`.store`. Fault injection (``chaos``, ``delay``): see :mod:`.server`.

One module per noun: :mod:`.server` (HTTP, :class:`DevServer`), :mod:`.store` (stories and what
was received), :mod:`.wire` (request parsing, answer bodies), :mod:`.page` (the HTML page).
Standard library only (no requests), so it starts fast and runs anywhere.
"""
from __future__ import annotations

from hookagent.devserver.server import FAULTS, MAX_BODY, DevServer
from hookagent.devserver.wire import (GITHUB_PATH, V3_PATH, V5_PATH, BadRequest, parse_github_push, parse_v3,
                                      parse_v5)

__all__ = ["DevServer", "BadRequest", "FAULTS", "MAX_BODY", "GITHUB_PATH", "V3_PATH", "V5_PATH",
           "parse_github_push", "parse_v3", "parse_v5"]
