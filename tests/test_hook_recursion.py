"""A hook chained after ours that leads back to ours: a link to our hook, a copy of it, a
dispatcher that runs it again. Each ran itself forever before (198 processes in 4 s, the push
never ended); now hookagent's part runs once per git invocation, the foreign hooks in the chain
run once, the chain back to ours ends with one line, and the push or commit returns.

Real pushes and commits fire the installed hooks (the real interpreter, a spool whose agent does
not start, so every run of our part stays in inbox/ as one record). Every push and commit runs in
a process group of its own with a timeout (testing.repos.bounded), so a loop fails the test
instead of hanging the suite.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from testing.repos import bounded, git, git_out, write_script
from testing.site import Site, bare_repo_with_hook, work_tree_with_hook

LOOPED = "leads back to hookagent's own hook; not running it again"

# Where ours finds the hook it chains: hookagent-chained/NAME (run under our $0: a sh script is
# read by its shell), or NAME.hookagent-orig, where installs before it kept one (run as it is).
KEPT = {"chained": ("hookagent-chained/{}", "../{}"), "legacy": ("{}.hookagent-orig", "{}")}
kept_layouts = pytest.mark.parametrize("layout", sorted(KEPT))


def kept_hook(hooks: Path, hook: str, layout: str) -> tuple[Path, str]:
    """The kept hook's path in this layout (its folder made), and a relative symlink from there to ours."""
    rel, link = KEPT[layout]
    path = hooks / rel.format(hook)
    path.parent.mkdir(exist_ok=True)
    return path, link.format(hook)


def records(site: Site, kind: str) -> list[str]:
    """The inbox records our part wrote (one per run of it), by kind: push, git."""
    inbox = Path(site.data["spool_dir"]) / "inbox"
    return sorted(p.name for p in inbox.iterdir() if f".{kind}." in p.name) if inbox.is_dir() else []


def said(proc: subprocess.CompletedProcess) -> list[str]:
    """hookagent's lines on a push's or commit's stderr."""
    return [line.removeprefix("remote: ").rstrip() for line in proc.stderr.decode().splitlines() if "hookagent" in line]


def push(work: Path, message: str) -> subprocess.CompletedProcess:
    git(work, "commit", "-q", "--allow-empty", "-m", message)
    proc = bounded(["git", "-C", str(work), "push", "-q", "origin", "main"])
    assert proc.returncode == 0, proc.stderr
    return proc


@kept_layouts
def test_a_chained_hook_that_is_a_link_to_ours_is_not_run_and_the_push_ends(tmp_path, layout):
    site = Site(tmp_path, "http://127.0.0.1:9")
    bare, work = bare_repo_with_hook(tmp_path, site)
    kept, link = kept_hook(bare / "hooks", "post-receive", layout)
    kept.symlink_to(link)
    proc = push(work, "Linked [#1]")
    assert len(records(site, "push")) == 1
    assert said(proc) == [f"hookagent: post-receive: hooks/{kept.relative_to(bare / 'hooks')} {LOOPED} (hookagent's"
                          " part ran once; remove it, see hookagent doctor)"]


@kept_layouts
def test_a_chained_hook_that_is_a_copy_of_ours_runs_nothing_twice_and_the_push_ends(tmp_path, layout):
    site = Site(tmp_path, "http://127.0.0.1:9")
    bare, work = bare_repo_with_hook(tmp_path, site)
    hooks = bare / "hooks"
    kept, _link = kept_hook(hooks, "post-receive", layout)
    shutil.copy2(hooks / "post-receive", kept)
    proc = push(work, "Copied [#2]")
    assert len(records(site, "push")) == 1
    (line,) = said(proc)
    assert line.startswith("hookagent: post-receive: ") and f"{kept.relative_to(hooks)} {LOOPED}" in line, line
    proc = push(work, "Copied again [#3]")           # every push: once, and one line
    assert len(records(site, "push")) == 2 and len(said(proc)) == 1


DISPATCHER = """#!/bin/sh
# Runs every hook in post-receive.d/ with the push's lines (as Gitea's and other dispatchers do).
echo dispatched >>{marker}
lines=$(cat)
for hook in "${{0%/*}}"/post-receive.d/*; do
    printf '%s\\n' "$lines" | "$hook" "$@"
done
"""


@kept_layouts
def test_a_two_step_chain_back_to_ours_runs_the_foreign_hook_once_and_ours_once(tmp_path, layout):
    """Ours chains a dispatcher, whose folder also holds a link to ours: the dispatcher runs once,
    ours once, the link back says one line."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    bare, work = bare_repo_with_hook(tmp_path, site)
    hooks = bare / "hooks"
    marker = tmp_path / "dispatched"
    write_script(kept_hook(hooks, "post-receive", layout)[0], DISPATCHER.format(marker=marker))
    (hooks / "post-receive.d").mkdir()
    (hooks / "post-receive.d" / "hookagent").symlink_to("../post-receive")
    proc = push(work, "Two steps [#4]")
    assert marker.read_text() == "dispatched\n"
    assert len(records(site, "push")) == 1
    (line,) = said(proc)
    assert f"post-receive.d/hookagent {LOOPED}" in line, line


COMMIT_DISPATCHER = """#!/bin/sh
# Runs every hook in post-commit.d/.
echo dispatched >>{marker}
for hook in "${{0%/*}}"/post-commit.d/*; do
    "$hook" "$@"
done
"""
AMEND_ONCE = """#!/bin/sh
# Amends the commit once (the common recipe, with its own guard against running itself again).
[ -z "$AMENDING" ] || exit 0
AMENDING=1 git commit -q --amend -m "$(git log -1 --format=%B) [#6]"
"""


@kept_layouts
def test_a_commit_made_inside_the_chain_is_recorded_and_the_link_back_to_ours_ends(tmp_path, layout):
    """post-commit chains a dispatcher running post-commit.d/: an entry that amends the commit (a
    new git invocation: ours records the amended commit too), then a link back to ours (ends, one
    line per invocation). The dispatcher runs once per commit."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    work = work_tree_with_hook(tmp_path, site)
    hooks = work / ".git" / "hooks"
    marker = tmp_path / "dispatched"
    write_script(kept_hook(hooks, "post-commit", layout)[0], COMMIT_DISPATCHER.format(marker=marker))
    (hooks / "post-commit.d").mkdir()
    write_script(hooks / "post-commit.d" / "10-amend", AMEND_ONCE)
    (hooks / "post-commit.d" / "20-hookagent").symlink_to("../post-commit")
    (work / "f").write_text("x\n")
    git(work, "add", "f")
    proc = bounded(["git", "-C", str(work), "commit", "-q", "-m", "Amended inside the hook [#5]"])
    assert proc.returncode == 0, proc.stderr
    amended = git_out(work, "rev-parse", "HEAD")
    first = git_out(work, "rev-parse", "HEAD@{1}")
    assert git_out(work, "log", "-1", "--format=%s") == "Amended inside the hook [#5] [#6]"
    key = records(site, "git")[0].split(".")[0]
    assert records(site, "git") == sorted([f"{key}.git.{first}", f"{key}.git.{amended}"])
    assert marker.read_text() == "dispatched\n" * 2
    lines = said(proc)
    assert len(lines) == 2 and all(f"post-commit.d/20-hookagent {LOOPED}" in line for line in lines), lines


@kept_layouts
def test_install_refuses_to_chain_a_kept_hook_that_is_ours_or_links_to_ours(tmp_path, layout):
    """In hookagent-chained/, or an older install's NAME.hookagent-orig (which install would move there)."""
    site = Site(tmp_path, "http://127.0.0.1:9")
    bare, _work = bare_repo_with_hook(tmp_path, site)
    hooks = bare / "hooks"
    kept, link = kept_hook(hooks, "post-receive", layout)
    for make in (lambda: shutil.copy2(hooks / "post-receive", kept), lambda: kept.symlink_to(link)):
        make()
        proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(bare), "--config", str(site.config_path)],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, proc.stdout
        assert proc.stderr == (f"hookagent: {kept} is hookagent's own hook (or links to post-receive): chained after"
                               " ours, it would run ours again; remove it, then install again\n")
        assert os.path.lexists(kept)
        kept.unlink()
