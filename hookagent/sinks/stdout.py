"""Dry runs: each commit as one JSON line on a stream (default ``sys.stdout``).

The line is the v5 record (``{"source_commit": {...}}``).  It never refuses a commit; when the
stream cannot encode a character the line is written with ASCII escapes instead.  Only a stream
that cannot be written at all (closed pipe, full disk) raises, as RETRY, so nothing is recorded
as sent that was not printed.
"""
from __future__ import annotations

import json
import sys
from typing import IO

from hookagent.errors import RETRY, DeliveryError
from hookagent.model import Commit
from hookagent.sinks.records import v5_record


class StdoutSink:
    name = "stdout"
    content_type = "application/json"

    def __init__(self, stream: IO[str] | None = None) -> None:
        self._stream = stream

    def __repr__(self) -> str:
        return "<StdoutSink>"

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stdout  # late: tests swap it

    def render(self, commit: Commit) -> bytes:
        return self._line(commit, ascii_only=False).encode("utf-8")

    def send(self, commit: Commit) -> None:
        stream = self.stream
        try:
            try:
                stream.write(self._line(commit, ascii_only=False))
            except UnicodeEncodeError:
                stream.write(self._line(commit, ascii_only=True))
            stream.flush()
        except (OSError, ValueError) as exc:   # ValueError: write to a closed file
            raise DeliveryError(f"cannot write the dry-run output ({exc}); fix the output stream"
                                " (a closed pipe?) and run again", RETRY) from None

    def close(self) -> None:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass

    @staticmethod
    def _line(commit: Commit, *, ascii_only: bool) -> str:
        return json.dumps(v5_record(commit), ensure_ascii=ascii_only) + "\n"
