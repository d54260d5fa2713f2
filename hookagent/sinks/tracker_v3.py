"""Pivotal Tracker API v3: ``POST {base}/services/v3/source_commits``, XML body, ``X-TrackerToken``.

The body is :func:`hookagent.sinks.records.v3_xml` (see there for the url and cleaning rules).
"""
from __future__ import annotations

from hookagent.model import Commit
from hookagent.sinks.http import HttpSink
from hookagent.sinks.records import v3_xml


class TrackerV3Sink(HttpSink):
    name = "v3"
    path = "/services/v3/source_commits"
    content_type = "application/xml"
    accept = "application/xml"

    def render(self, commit: Commit) -> bytes:
        return v3_xml(commit)
