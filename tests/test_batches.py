"""agent/batches.py with a one-commit-per-request sink (v5): a backfill is queued as entries of
many commits; a commit the tracker refuses for good costs only itself. Real repository, real
`hookagent backfill` and `flush`, a real loopback receiver (testing/receiver.py)."""
from __future__ import annotations

import json
from pathlib import Path

from testing.history import make_history
from testing.receiver import Recorder
from testing.site import Site


def test_a_commit_refused_for_good_in_a_backfill_entry_dies_alone(tmp_path: Path):
    with Recorder(fail={2: 422}) as rec:
        site = Site(tmp_path, rec.url, api="v5")
        repo = tmp_path / "repo"
        make_history(repo, 3, refs_every=1)
        proc = site.cli("backfill", str(repo))
        assert proc.returncode == 0, proc.stderr
        [(_, entry)] = site.spool.entries("new")
        assert len(entry["commits"]) == 3, "one entry, sent one commit per request"
        assert site.cli("flush").returncode == 0
        sent = [(p["source_commit"]["commit_id"], status) for p, status in rec.payloads()]
        assert [status for _, status in sent] == [200, 422, 200], "the commit after the refused one still goes"
        refused = sent[1][0]
        st = json.loads(site.cli("status", "--json").stdout)
        assert (st["sent"], st["dead"]["commits"], st["pending"]["commits"], st["deferred"]["commits"]) == (2, 1, 0, 0)
        [item] = st["dead"]["items"]
        assert item["commits"] == [refused] and refused[:12] in item["error"] and item["status"] == 422
