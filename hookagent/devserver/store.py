"""The receiver's state: stories, the commits it accepted, counters, behind one lock.

A commit adds one comment to each story it references; "finished"/"delivered" keywords
(:mod:`hookagent.stories`) move the story forward (started < finished < delivered, never back).
With ``stories=None`` any story a commit references is created on first sight; with a list only
those exist, and references to others are ignored.
"""
from __future__ import annotations

import datetime as _dt
import threading
from typing import Any, Iterable

from hookagent import stories
from hookagent.model import DELIVERED, FINISHED

STATE_ORDER = {"started": 0, FINISHED: 1, DELIVERED: 2}


class Store:
    """Stories, accepted commits and counters, behind one lock."""

    def __init__(self, stories: Iterable[int] | None) -> None:
        self.lock = threading.Lock()
        self.auto_create = stories is None
        self.stories: dict[int, dict[str, Any]] = {}
        for sid in stories or ():
            self.stories[int(sid)] = new_story(int(sid))
        self.received: list[dict[str, Any]] = []
        self.pushes: list[dict[str, Any]] = []
        self.requests = 0
        self.connections = 0
        self.next_comment_id = 1

    def apply(self, record: dict[str, Any], api: str) -> list[dict[str, Any]]:
        """Record one accepted source_commit; return the comments it created."""
        found = stories.parse(record["message"])
        created = []
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self.lock:
            self.received.append(dict(record, api=api))
            for ref in found:
                story = self.stories.get(ref.id)
                if story is None:
                    if not self.auto_create:
                        continue
                    story = self.stories[ref.id] = new_story(ref.id)
                head = f"Commit by {record['author']}" if record["author"] else "Commit"
                text = "\n".join(filter(None, [head, record["url"]])) + "\n\n" + record["message"]
                comment = {"id": self.next_comment_id, "story_id": ref.id, "text": text,
                           "author": record["author"], "commit_id": record["commit_id"],
                           "url": record["url"], "message": record["message"], "created_at": now}
                self.next_comment_id += 1
                story["comments"].append(comment)
                if ref.state and STATE_ORDER[ref.state] > STATE_ORDER[story["current_state"]]:
                    story["current_state"] = ref.state
                created.append(dict(comment))
        return created


def new_story(sid: int) -> dict[str, Any]:
    return {"id": sid, "name": f"Story #{sid}", "current_state": "started", "comments": []}
