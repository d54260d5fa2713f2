"""Pivotal Tracker's source_commits API: ``POST {base}/services/{api}/source_commits``, one commit
per request, the token in ``X-TrackerToken``.

v3 sends :func:`hookagent.sinks.records.v3_xml` (XML), v5 :func:`hookagent.sinks.records.v5_json`
(JSON); see there for the fields and the cleaning rules. Everything else is the same, so one class
serves both.
"""
from __future__ import annotations

from typing import Any, Callable

from hookagent.model import Commit
from hookagent.sinks.http import HttpSink
from hookagent.sinks.records import v3_xml, v5_json

# api -> the read-only request `hookagent doctor` makes with the token (Tracker's own endpoints:
# v5's GET /me, the token's user; v3's activity feed of the token's projects, one item)
PROBES: dict[str, str] = {
    "v3": "/services/v3/activities?limit=1",
    "v5": "/services/v5/me",
}

# api -> (media type, for Content-Type and Accept; the body for one commit)
APIS: dict[str, tuple[str, Callable[[Commit], bytes]]] = {
    "v3": ("application/xml", v3_xml),
    "v5": ("application/json", v5_json),
}


class TrackerSink(HttpSink):
    def __init__(self, api: str, base_url: str, token: str, **kw: Any) -> None:
        media_type, self._body = APIS[api]
        self.name = api
        self.path = f"/services/{api}/source_commits"
        self.content_type = self.accept = media_type
        self.probe_method, self.probe_path = "GET", PROBES[api]
        super().__init__(base_url, token, **kw)

    def render(self, commit: Commit) -> bytes:
        return self._body(commit)
