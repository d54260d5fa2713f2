"""Pivotal Tracker API v5: ``POST {base}/services/v5/source_commits``, JSON body, ``X-TrackerToken``.

The body is :func:`hookagent.sinks.records.v5_json` (url omitted when the commit has none).
"""
from __future__ import annotations

from hookagent.model import Commit
from hookagent.sinks.http import HttpSink
from hookagent.sinks.records import v5_json


class TrackerV5Sink(HttpSink):
    name = "v5"
    path = "/services/v5/source_commits"
    content_type = "application/json"
    accept = "application/json"

    def render(self, commit: Commit) -> bytes:
        return v5_json(commit)
