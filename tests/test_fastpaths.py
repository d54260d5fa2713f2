"""The hook path's light replacements, each checked against the library it stands in for.

The post-commit hook avoids ``re``, ``json``, ``fnmatch``, ``argparse`` and ``subprocess``: each
commit would pay for importing them (benchmarks/bench_commit.py measures the hook). Each
replacement must give the same answers as the real thing: refscan vs refs.parse, jsonenc vs
json.dumps, globmatch vs fnmatch.fnmatchcase, gitobj vs git itself. And the hook, run for real,
must not import them.
"""
from __future__ import annotations

import fnmatch
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent import jsonenc, refs, refscan
from hookagent.globmatch import match
from hookagent.vcs import git as vgit
from hookagent.vcs import gitobj
from testing.site import Site, commit_file, git
from tests.test_refs import TABLE


# ---------------------------------------------------------------- refscan
def _generated_messages(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    tokens = ["[", "]", "#", "#1", "#12", "#1234567890123456789", "#123456789012345678", " ", "\t", ",",
              "fix", "Fixes", "FIXED", "complete", "finished", "Delivers", "deliver", "prefixes",
              "fixe", "x", "\n", "é", "[#", "#0", "9", ":", "(", ")", "ﬁx"]
    inner = [t for t in tokens if t not in ("[", "]", "\n")]
    out = []
    for _ in range(n):
        if rng.random() < 0.5:   # free text with brackets anywhere
            out.append("".join(rng.choice(tokens) for _ in range(rng.randint(0, 12))))
        else:                    # a bracket group made of group-like tokens, among text
            group = "".join(rng.choice(inner[:14]) for _ in range(rng.randint(0, 6)))
            out.append(rng.choice(["", "x ", "[", "a]"]) + "[" + group + "]" + rng.choice(["", "(l)", "]", " y"]))
    return out


@pytest.mark.parametrize("message", [m for m, _ in TABLE])
def test_refscan_agrees_with_refs_parse_on_the_table(message):
    assert refscan.has_refs(message) == bool(refs.parse(message)) == refs.has_refs(message)


def test_refscan_agrees_with_refs_parse_on_generated_messages():
    messages = _generated_messages(20_000, 7)
    found = 0
    for message in messages:
        assert refscan.has_refs(message) == bool(refs.parse(message)), repr(message)
        found += refscan.has_refs(message)
    assert 500 < found < len(messages) - 500, "both answers are well represented"


def test_refscan_on_a_megabyte_of_brackets_is_linear_enough():
    big = "[" * 200_000 + "x" * 800_000 + " [fixes #1]"
    assert refscan.has_refs(big)
    assert not refscan.has_refs("[#1" * 300_000)


# ---------------------------------------------------------------- jsonenc
def _random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-2**70, 2**70)
    if kind == 2:
        return rng.choice([0.0, -0.0, 1.5, 1e300, -2.5e-308, 1 / 3, 1776950400.123456])
    if kind in (3, 4):
        alphabet = ["a", "\"", "\\", "\n", "\t", "\x00", "\x1f", "\x7f", "é", "日本", "🚀", "\u2028",
                    "\udcff", "\ud800", "]]>", "&<>", "'", "/"]
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if kind == 6:
        return tuple(_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return {str(_random_value(rng, 3)): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_jsonenc_writes_exactly_what_json_dumps_writes():
    rng = random.Random(11)
    for _ in range(3000):
        value = _random_value(rng)
        text = jsonenc.dumps(value)
        assert text == json.dumps(value, separators=(",", ":"))
        assert text.isascii()
        assert json.loads(text) == json.loads(json.dumps(value))


@pytest.mark.parametrize("bad", [math.nan, math.inf, {1: "int key"}, {"set": {1}}, b"bytes"])
def test_jsonenc_refuses_what_json_cannot_hold(bad):
    with pytest.raises((ValueError, TypeError)):
        jsonenc.dumps(bad)


# ---------------------------------------------------------------- globmatch
def _descending_range(pattern: str) -> bool:
    # fnmatch drops an empty range like `.-*` by splicing the text around it, which can turn a
    # following `!` into a negation (`[.-*!-]` matches everything but `-`). globmatch treats an
    # empty range as matching nothing and keeps the rest; those patterns are left out here.
    return any(pattern[i] == "-" and pattern[i - 1] > pattern[i + 1] for i in range(1, len(pattern) - 1))


def test_globmatch_agrees_with_fnmatchcase():
    rng = random.Random(3)
    compared = 0
    for _ in range(60_000):
        pattern = "".join(rng.choice("ab/*?[]!-.") for _ in range(rng.randint(0, 8)))
        name = "".join(rng.choice("ab/-.[]!") for _ in range(rng.randint(0, 8)))
        if _descending_range(pattern):
            continue
        compared += 1
        assert match(name, pattern) == fnmatch.fnmatchcase(name, pattern), (name, pattern)
    assert compared > 40_000


@pytest.mark.parametrize("name,pattern", [
    ("/srv/git/project.git", "/srv/git/*.git"), ("/srv/git/a/b.git", "/srv/git/*.git"),
    ("release/1.2", "release/*"), ("main", "ma[a-z]n"), ("main", "m[!x]in"), ("Main", "main"),
])
def test_globmatch_examples(name, pattern):
    assert match(name, pattern) == fnmatch.fnmatchcase(name, pattern)


# ---------------------------------------------------------------- gitobj
def _same_as_git(repo: Path, expect_fast: bool = True, cwd: Path | None = None,
                 env: dict | None = None) -> None:
    old = dict(os.environ)
    os.environ.update(env or {})
    try:
        found = gitobj.head(str(cwd or repo))
    finally:
        os.environ.clear()
        os.environ.update(old)
    if not expect_fast:
        assert found is None
        return
    assert found is not None
    want = vgit.read_commit(str(cwd or repo), "HEAD")
    assert found.fields == want
    assert found.branch == vgit.current_branch(str(cwd or repo))
    assert found.toplevel == str(cwd or repo)


def _repo(tmp_path: Path, *init: str) -> Path:
    repo = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", *init, str(repo))
    return repo


def test_gitobj_reads_head_like_git_in_a_plain_repo(tmp_path):
    repo = _repo(tmp_path)
    commit_file(repo, "first [#1]")
    commit_file(repo, "second\n\nbody with é and 🚀 [fixes #2]\n")
    _same_as_git(repo)


def test_gitobj_declared_latin1_and_an_offset_date(tmp_path):
    repo = _repo(tmp_path)
    env = dict(os.environ, GIT_AUTHOR_DATE="2026-03-01T10:20:30-0930", GIT_AUTHOR_NAME="Zoë")
    commit_file(repo, "café [#6]".encode("latin-1"), extra_args=("-c", "i18n.commitEncoding=ISO-8859-1"),
                env=env)
    _same_as_git(repo)
    assert gitobj.head(str(repo)).fields["date"] == "2026-03-01T10:20:30-09:30"


def test_gitobj_packed_refs_detached_head_and_a_separate_git_dir(tmp_path):
    repo = _repo(tmp_path)
    commit_file(repo, "one [#1]")
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    _same_as_git(repo)
    git(repo, "checkout", "-q", "--detach")
    commit_file(repo, "detached [#2]")
    _same_as_git(repo)
    other = tmp_path / "sep"
    git(tmp_path, "init", "-q", "-b", "main", "--separate-git-dir", str(tmp_path / "sep.git"), str(other))
    commit_file(other, "separate [#3]")
    _same_as_git(other)


def test_gitobj_linked_worktree_uses_git_dir_like_the_hook_sees_it(tmp_path):
    repo = _repo(tmp_path)
    commit_file(repo, "base [#1]")
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "topic", str(wt))
    commit_file(wt, "in worktree [#2]")
    gitdir = git(wt, "rev-parse", "--absolute-git-dir").strip()
    _same_as_git(repo, cwd=wt, env={"GIT_DIR": gitdir})
    _same_as_git(repo, cwd=wt)   # without GIT_DIR: through the .git file


def test_gitobj_falls_back_when_unsure(tmp_path):
    repo = _repo(tmp_path)
    commit_file(repo, "one [#1]")
    git(repo, "gc", "-q")             # the commit is now in a pack: let git read it
    _same_as_git(repo, expect_fast=False)
    sha256 = tmp_path / "s256"
    git(tmp_path, "init", "-q", "-b", "main", "--object-format=sha256", str(sha256))
    commit_file(sha256, "sha256 [#2]")
    _same_as_git(sha256, expect_fast=False)
    unborn = tmp_path / "unborn"
    git(tmp_path, "init", "-q", "-b", "main", str(unborn))
    assert gitobj.head(str(unborn)) is None


# ---------------------------------------------------------------- the hook's imports
def test_the_post_commit_hook_imports_nothing_heavy(tmp_path):
    """Run the hook command the way the installed hook does, in a real repository, and list
    what it imported."""
    site = Site(tmp_path, "http://127.0.0.1:9", repos=[{"path": "*", "url": "https://x/{commit_id}"}])
    repo = _repo(tmp_path)
    commit_file(repo, "before install [#1]")
    site.cli("status")   # builds the hook's config cache, as install does
    probe = ("import sys; from hookagent.main import main; rc = main(sys.argv[1:]);"
             " print(' '.join(sorted(sys.modules)))")
    env = dict(os.environ)
    for _ in range(2):   # the first run may build the config cache (yaml); the second is the steady state
        proc = subprocess.run([sys.executable, "-I", "-c", probe, "hook", "--config", str(site.config_path),
                               "post-commit", "--"], cwd=repo, capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    loaded = set(proc.stdout.split())
    heavy = {"re", "json", "enum", "fnmatch", "argparse", "subprocess", "typing", "datetime", "yaml",
             "requests", "git", "sqlite3", "urllib3", "hookagent.refs", "hookagent.config"}
    assert not (loaded & heavy), sorted(loaded & heavy)
    assert "hookagent.hookgit" in loaded and "hookagent.spool" in loaded
    assert len(site.spool.due_names()) == 1, "and it did record the commit"

def test_jsonenc_large_entries_go_through_json_with_the_same_output():
    big = {"v": 1, "commits": [{"message": f"m{i} é 🚀 \udcff", "n": i} for i in range(jsonenc.LARGE + 5)]}
    assert jsonenc._large(big) and not jsonenc._large({"commits": [1]})
    assert jsonenc.dumps(big) == json.dumps(big, separators=(",", ":"))
    assert jsonenc.dumps(big).isascii()


def test_post_commit_falls_back_to_git_where_direct_reads_cannot_go(tmp_path):
    """A sha256 repository (an extension gitobj leaves to git): the installed hook still records
    HEAD, with its branch, through git itself."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    repo = tmp_path / "s256"
    git(tmp_path, "init", "-q", "-b", "main", "--object-format=sha256", str(repo))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(repo), "--config",
                           str(site.config_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert commit_file(repo, "sha256 commit [#4]").returncode == 0
    assert gitobj.head(str(repo)) is None
    (name,) = site.spool.due_names()
    (entry,) = [e for n, e in site.spool.entries("new") if n == name]
    (commit,) = entry["commits"]
    assert commit["commit_id"] == git(repo, "rev-parse", "HEAD").strip() and len(commit["commit_id"]) == 64
    assert commit["branch"] == "main" and commit["message"].strip() == "sha256 commit [#4]"
