"""What goes over the wire: the request bodies the receiver accepts (parsed strictly, so a
sink's mistakes show as a 400 saying what was wrong) and the answer bodies it sends back.

Standard library only.
"""
from __future__ import annotations

import datetime as _dt
import json
import xml.etree.ElementTree as ET
from typing import Any

V3_PATH = "/services/v3/source_commits"
V5_PATH = "/services/v5/source_commits"
GITHUB_PATH = "/services/v3/github_commits"
V5_ME_PATH = "/services/v5/me"                 # GET: the token's user (what `hookagent doctor` asks)
V3_ACTIVITIES_PATH = "/services/v3/activities"  # GET ?limit=N: the token's projects' activity feed
FIELDS = ("message", "author", "commit_id", "url")
REQUIRED = ("message", "commit_id")


class BadRequest(Exception):
    """The body cannot be accepted; the message says what was wrong (sent back with a 400)."""


def _media_type(headers) -> str:
    return (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


def parse_v3(headers, body: bytes) -> dict[str, Any]:
    """The source_commit record in a v3 XML body; BadRequest says what is wrong."""
    ctype = _media_type(headers)
    if ctype not in ("application/xml", "text/xml"):
        raise BadRequest(f"Content-Type must be application/xml for v3, got {ctype or 'none'!r}")
    if b"<!DOCTYPE" in body.upper():
        raise BadRequest("document type declarations (DTDs) are not accepted; send the bare"
                         " <source_commit> element")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadRequest(f"malformed XML: {exc}; build the body with an XML library") from None
    if root.tag != "source_commit":
        raise BadRequest(f"the root element must be <source_commit>, got <{root.tag}>")
    record: dict[str, Any] = {}
    for child in root:
        if child.tag not in FIELDS:
            raise BadRequest(f"unknown element <{child.tag}> in <source_commit>; expected"
                             f" {', '.join(FIELDS)}")
        if child.tag in record:
            raise BadRequest(f"<{child.tag}> given twice")
        if len(child):
            raise BadRequest(f"<{child.tag}> must hold text, not elements")
        record[child.tag] = child.text or ""
    return _complete(record)


def parse_v5(headers, body: bytes) -> dict[str, Any]:
    """The source_commit record in a v5 JSON body; BadRequest says what is wrong."""
    ctype = _media_type(headers)
    if ctype != "application/json":
        raise BadRequest(f"Content-Type must be application/json for v5, got {ctype or 'none'!r}")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 ({exc}); encode JSON as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}; build the body with a JSON library") from None
    if not isinstance(data, dict) or set(data) != {"source_commit"}:
        raise BadRequest('the body must be an object with one key, "source_commit"')
    inner = data["source_commit"]
    if not isinstance(inner, dict):
        raise BadRequest('"source_commit" must be an object')
    record: dict[str, Any] = {}
    for key, value in inner.items():
        if key not in FIELDS:
            raise BadRequest(f"unknown field {key!r} in source_commit; expected {', '.join(FIELDS)}")
        if value is None and key in ("author", "url"):
            continue
        if not isinstance(value, str):
            raise BadRequest(f"source_commit.{key} must be a string")
        record[key] = value
    return _complete(record)


def _complete(record: dict[str, Any]) -> dict[str, Any]:
    for key in REQUIRED:
        if not (record.get(key) or "").strip():
            raise BadRequest(f"source_commit.{key} is missing or empty; it is required")
    return {"message": record["message"], "author": record.get("author") or "",
            "commit_id": record["commit_id"], "url": record.get("url") or None}


_HEX = frozenset("0123456789abcdef")


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) in (40, 64) and set(value) <= _HEX


def _iso_with_offset(value: Any) -> bool:
    if not isinstance(value, str) or "T" not in value:
        return False
    try:
        when = _dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return False
    return when.tzinfo is not None


def _check_person(where: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object with name and email")
    if not isinstance(value.get("name"), str):
        raise BadRequest(f"{where}.name is missing or not a string")
    if "email" not in value or not (value["email"] is None or isinstance(value["email"], str)):
        raise BadRequest(f"{where}.email is missing, or neither a string nor null")
    if "username" in value and not isinstance(value["username"], str):
        raise BadRequest(f"{where}.username must be a string when given")


def _check_push_commit(where: str, c: Any) -> None:
    if not isinstance(c, dict):
        raise BadRequest(f"{where} must be an object")
    if not _is_sha(c.get("id")):
        raise BadRequest(f"{where}.id must be a full lowercase hex commit id")
    if "tree_id" in c and not _is_sha(c["tree_id"]):
        raise BadRequest(f"{where}.tree_id must be a full lowercase hex tree id")
    if not isinstance(c.get("distinct"), bool):
        raise BadRequest(f"{where}.distinct is missing or not true/false")
    if not isinstance(c.get("message"), str) or not c["message"].strip():
        raise BadRequest(f"{where}.message is missing or empty")
    if not _iso_with_offset(c.get("timestamp")):
        raise BadRequest(f"{where}.timestamp must be ISO 8601 with a UTC offset, got {c.get('timestamp')!r}")
    if not isinstance(c.get("url"), str):
        raise BadRequest(f"{where}.url is missing or not a string")
    _check_person(f"{where}.author", c.get("author"))
    _check_person(f"{where}.committer", c.get("committer"))
    for key in ("added", "removed", "modified"):
        files = c.get(key)
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise BadRequest(f"{where}.{key} must be a list of paths")


def parse_github_push(headers, body: bytes) -> dict[str, Any]:
    """A GitHub push event payload (form ``payload=`` or JSON body); BadRequest says what is wrong.

    Required, as GitHub documents the push event: ref, before, after (hex ids), created, deleted,
    forced (booleans), compare (string), commits (each: id, distinct, message, timestamp with
    offset, url, author and committer {name, email}, added/removed/modified), head_commit (a commit
    or null), repository {name, full_name; url when it has one}, pusher {name, email}. Unknown
    fields are allowed (GitHub adds fields over time and receivers ignore them).
    """
    ctype = _media_type(headers)
    if ctype == "application/x-www-form-urlencoded":
        from urllib.parse import parse_qs
        try:
            form = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                            encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequest(f"malformed form body ({exc}); send payload=<url-encoded JSON>") from None
        if set(form) != {"payload"} or len(form["payload"]) != 1:
            raise BadRequest("the form must have exactly one field, payload, holding the JSON")
        text = form["payload"][0]
    elif ctype == "application/json":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the body is not UTF-8 ({exc}); encode JSON as UTF-8") from None
    else:
        raise BadRequest("Content-Type must be application/x-www-form-urlencoded (payload=<JSON>) or"
                         f" application/json for a GitHub push payload, got {ctype or 'none'!r}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}; build the payload with a JSON library") from None
    if not isinstance(data, dict):
        raise BadRequest("the payload must be a JSON object")
    if not isinstance(data.get("ref"), str) or not data["ref"]:
        raise BadRequest("ref is missing or not a string (a full ref like refs/heads/main)")
    for key in ("before", "after"):
        if not _is_sha(data.get(key)):
            raise BadRequest(f"{key} must be a full lowercase hex commit id (40 zeros for none)")
    for key in ("created", "deleted", "forced"):
        if not isinstance(data.get(key), bool):
            raise BadRequest(f"{key} is missing or not true/false")
    if not isinstance(data.get("compare"), str):
        raise BadRequest("compare is missing or not a string")
    commits = data.get("commits")
    if not isinstance(commits, list):
        raise BadRequest("commits is missing or not a list")
    for i, c in enumerate(commits):
        _check_push_commit(f"commits[{i}]", c)
    if "head_commit" not in data:
        raise BadRequest("head_commit is missing (null is allowed)")
    if data["head_commit"] is not None:
        _check_push_commit("head_commit", data["head_commit"])
    repo = data.get("repository")
    if not isinstance(repo, dict):
        raise BadRequest("repository is missing or not an object")
    for key in ("name", "full_name"):
        if not isinstance(repo.get(key), str) or not repo[key]:
            raise BadRequest(f"repository.{key} is missing or not a non-empty string")
    for key in ("url", "html_url"):   # a self-hosted repository without a web address has none
        if key in repo and (not isinstance(repo[key], str) or not repo[key]):
            raise BadRequest(f"repository.{key} is not a non-empty string (leave it out when there is none)")
    _check_person("pusher", data.get("pusher"))
    return data


# ---------------------------------------------------------------------- answers
def comments_json(created: list[dict[str, Any]], commit_type: str) -> list[dict[str, Any]]:
    """The comments a v5 or github_commits request created, as Tracker's JSON answer lists them."""
    return [{"kind": "comment", "id": c["id"], "story_id": c["story_id"], "text": c["text"],
             "commit_identifier": c["commit_id"], "commit_type": commit_type, "created_at": c["created_at"]}
            for c in created]


def comments_xml(created: list[dict[str, Any]]) -> ET.Element:
    """The comments a v3 request created, as Tracker's XML answer lists them."""
    root = ET.Element("comments", {"type": "array", "count": str(len(created))})
    for c in created:
        el = ET.SubElement(root, "comment")
        for key in ("id", "story_id", "text", "author", "commit_id", "created_at"):
            ET.SubElement(el, key).text = str(c[key])
    return root


def me_json() -> dict[str, Any]:
    """GET /services/v5/me: the token's user, as Tracker's ``me`` resource (abridged; Tracker also
    answers the api_token itself, which the devserver never echoes)."""
    return {"kind": "me", "id": 1, "name": "Devserver User", "initials": "DU", "username": "devserver",
            "email": "devserver@example.com", "time_zone": {"kind": "time_zone", "olson_name": "Etc/UTC",
                                                            "offset": "+00:00"}}


def activities_xml(comments: list[dict[str, Any]], limit: int) -> ET.Element:
    """GET /services/v3/activities?limit=N: the newest comments the commits made, newest first, as
    v3's activity feed lists them (abridged: one ``note_create`` per comment)."""
    newest = sorted(comments, key=lambda c: c["id"], reverse=True)[:max(0, limit)]
    root = ET.Element("activities", {"type": "array"})
    for c in newest:
        el = ET.SubElement(root, "activity")
        for key, value in (("id", c["id"]), ("event_type", "note_create"), ("occurred_at", c["created_at"]),
                           ("author", c["author"]), ("description", f"{c['author']} added comment: {c['text']}")):
            ET.SubElement(el, key).text = str(value)
        stories_el = ET.SubElement(el, "stories", {"type": "array"})
        ET.SubElement(ET.SubElement(stories_el, "story"), "id").text = str(c["story_id"])
    return root
