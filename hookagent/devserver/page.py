"""The receiver's HTML page (``GET /``): every story, its state and its comments."""
from __future__ import annotations

import html
from typing import Any


def render(stories: dict[int, dict[str, Any]], received: int) -> str:
    """The page for a snapshot of the stories and how many commits were received."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">',
             "<title>hookagent devserver</title></head><body>",
             f"<h1>hookagent devserver</h1><p>{len(stories)} stories, "
             f"{received} commits received.</p>"]
    for sid in sorted(stories):
        story = stories[sid]
        parts.append(f"<h2>{e(story['name'])} <small>({e(story['current_state'])})</small></h2><ul>")
        for c in story["comments"]:
            link = (f' <a href="{e(c["url"])}">{e(c["url"])}</a>'
                    if c["url"] and c["url"].lower().startswith(("http://", "https://")) else "")
            parts.append(f"<li><b>{e(c['author'])}</b> <code>{e(str(c['commit_id']))}</code>"
                         f"{link}<pre>{e(c['message'])}</pre></li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)
