"""The records the sinks send, as bytes: pure functions, no network, no requests import.

* v3 XML (ElementTree, UTF-8 with declaration)::

      <source_commit><message/><author/><commit_id/><url/></source_commit>

  ``url`` is left out when the commit has none (Tracker accepts a source_commit without it; an
  empty element would store an empty link).  Fields pass :func:`hookagent.xmltext.xml_text`:
  characters XML 1.0 forbids are removed, line ends become ``\\n`` (what a parser reads anyway).

* v5 JSON (``json.dumps(ensure_ascii=False)``, UTF-8)::

      {"source_commit": {"message": ..., "author": ..., "commit_id": ..., "url": ...}}

  ``url`` omitted when None or empty.  Fields pass :func:`hookagent.xmltext.clean_text` (same
  removals as v3, so both APIs store the same text; lone surrogates could not be encoded as UTF-8
  anyway); line ends are kept.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from hookagent.model import Commit
from hookagent.xmltext import clean_text, xml_text


def v3_xml(commit: Commit) -> bytes:
    root = ET.Element("source_commit")
    fields = [("message", commit.message), ("author", commit.author), ("commit_id", commit.commit_id)]
    if commit.url:
        fields.append(("url", commit.url))
    for tag, value in fields:
        ET.SubElement(root, tag).text = xml_text(value)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True)


def v5_record(commit: Commit) -> dict[str, Any]:
    record = {"message": clean_text(commit.message), "author": clean_text(commit.author),
              "commit_id": clean_text(commit.commit_id)}
    if commit.url:
        record["url"] = clean_text(commit.url)
    return {"source_commit": record}


def v5_json(commit: Commit) -> bytes:
    return json.dumps(v5_record(commit), ensure_ascii=False).encode("utf-8")
