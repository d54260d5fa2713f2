"""Installing and removing hooks, with real repositories and real commits and pushes firing them.

The hooks are rendered with `--python` pointing at a fake interpreter (testing/fakepython.py) that
logs its argv, stdin, environment and working directory whenever the hook starts Python: for
post-receive and svn post-revprop-change (`hook NAME -- ARGS`, with stdin), to make the spool on
the first record, and to start a background agent after a record. git and svn post-commit run no
Python themselves: they write the commit (git) or the revision number (svn) into the spool's
inbox/, and that record shows what the hook passed on. Most tests therefore give install a
configuration whose spool is already made (the fake interpreter makes none). A few tests run the
real interpreter end to end.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from hookagent import hookfiles, inbox
from hookagent.spool import Spool
from testing import fakepython
from testing.site import prepare_as_the_hook
from testing.repos import (git, git_bare, git_commit, git_linked_worktree, git_push, git_work_tree, have_svn,
                           rev, run, svn, svn_checkout, svn_commit, svn_repository, svn_url, write_script)

ROOT = Path(__file__).resolve().parent.parent
ZERO = "0" * 40

def hookagent(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hookagent", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)


def in_process(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `hookagent ARGS` run in this process."""
    from hookagent.main import main
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def install(path: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    proc = hookagent("install", str(path), *args, **kw)
    assert proc.returncode == 0, proc.stderr
    return proc


def installed(hooks: Path, *notes: str) -> str:
    """install's output for a work tree: post-commit (with its note, if any), post-rewrite, post-merge."""
    return (f"installed post-commit in {hooks}{''.join(notes)}\ninstalled post-rewrite in {hooks}\n"
            f"installed post-merge in {hooks}\n")


@pytest.fixture
def fake(tmp_path):
    """(interpreter path, log path)."""
    log = tmp_path / "ours.log"
    return fakepython.make(tmp_path / "bin" / "python", log), log


@dataclass
class Conf:
    """A configuration file and the spool it names."""
    path: Path
    spool: Path

    @property
    def key(self) -> str:
        return inbox.agent_key(str(self.path))

    def records(self) -> dict[str, inbox.Record]:
        """The inbox records, by name."""
        folder = self.spool / "inbox"
        if not folder.is_dir():
            return {}
        return {p.name: inbox.parse(p.read_bytes()) for p in sorted(folder.iterdir())}


def make_conf(path: Path, spool: Path | None = None, *, made: bool = True, **data) -> Conf:
    """Write a configuration naming its own spool (JSON is YAML); the spool is made unless
    ``made`` is False (the hook has Python make it on its first record: the fake makes none)."""
    spool = spool or path.parent / "spool"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"spool_dir": str(spool), **data}) + "\n")
    if made:
        prepare_as_the_hook(path, spool)
    return Conf(path, spool)


@pytest.fixture
def conf(tmp_path) -> Conf:
    return make_conf(tmp_path / "conf.yaml")


def the_git_record(conf: Conf, repo: Path, head: str = "ref: refs/heads/main") -> inbox.Record:
    """The one inbox record there is: HEAD's raw commit, as post-commit wrote it in ``repo``."""
    sha = rev(repo)
    records = conf.records()
    assert list(records) == [f"{conf.key}.git.{sha}"]
    record = records[f"{conf.key}.git.{sha}"]
    assert record.complete
    assert record.headers == {"hook": "post-commit", "vcs": "git", "key": conf.key, "repo": str(repo), "head": head}
    (obj,) = record.objects
    assert obj.sha == sha and obj.verified()
    return record


def agent_argv(conf: Conf | None) -> list[str]:
    return [*fakepython.AGENT, *(["--config", str(conf.path)] if conf else [])]


def rendered(hook: Path) -> dict[str, str]:
    """The values rendered into an installed hook, unquoted."""
    text = hook.read_text(encoding="utf-8")
    block = text.split("# --- rendered at install ---\n", 1)[1].split("# --- end of rendered values ---", 1)[0]
    out = {}
    for line in block.splitlines():
        name, _, value = line.partition("=")
        out[name] = (shlex.split(value) or [""])[0]
    return out


def after_dashes(call: dict) -> list[str]:
    argv = call["argv"]
    return argv[argv.index("--") + 1:]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- git work trees ----------------------------------------------------------------------------

def test_work_tree_install_then_a_real_commit_fires_post_commit(tmp_path, fake, conf):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    proc = install(repo, "--python", str(py), "--config", str(conf.path))
    hooks = repo / ".git" / "hooks"
    assert proc.stdout == installed(hooks)
    assert mode(hooks / "post-commit") == mode(hooks / "post-rewrite") == mode(hooks / "post-merge") == 0o755
    assert not (hooks / "post-receive").exists()

    assert git_commit(repo, "Torpedoes [#42]").returncode == 0
    the_git_record(conf, repo)                      # the raw commit, from the work tree it was made in
    (call,) = fakepython.wait(log)
    assert call["argv"] == agent_argv(conf)
    assert call["stdin"] == "" and call["cwd"] == "/"   # detached: no stdin, no working directory held
    assert fakepython.hook_started(log) == [call]     # the only Python: post-commit itself ran none


@pytest.mark.parametrize("how", ["none", "env", "flag"])
def test_config_baked_in_from_flag_or_env_else_left_to_the_default_lookup(tmp_path, fake, how):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    xdg = tmp_path / "xdg"
    default = make_conf(xdg / "hookagent" / "config.yaml", tmp_path / "default-spool")   # the default lookup's
    given = make_conf(tmp_path / "rel" / "conf.yaml", tmp_path / "spool")
    env = dict(os.environ, XDG_CONFIG_HOME=str(xdg))
    args = ["--python", str(py)]
    if how == "env":
        env["HOOKAGENT_CONFIG"] = "rel/conf.yaml"          # relative: made absolute at install
    elif how == "flag":
        args += ["--config", "rel/conf.yaml"]
    install(repo, *args, cwd=tmp_path, env=env)
    assert rendered(repo / ".git" / "hooks" / "post-commit")["CFG"] == ("" if how == "none" else str(given.path))
    git_commit(repo, "Baked [#1]", env=env)
    (call,) = fakepython.wait(log)
    assert call["argv"] == agent_argv(None if how == "none" else given)
    used, unused = (default, given) if how == "none" else (given, default)
    assert list(used.records()) == [f"{used.key}.git.{rev(repo)}"] and unused.records() == {}


def test_a_config_not_written_yet_is_installed_with_the_defaults_until_it_is(tmp_path, monkeypatch):
    from hookagent.config import Config
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))   # a non-root user's default spool
    default_spool = Path(Config().spool_dir)
    repo = git_work_tree(tmp_path / "work")
    cfg = tmp_path / "later.yaml"
    proc = install(repo, "--config", str(cfg))
    assert f"config {cfg} does not exist yet" in proc.stderr
    hooks = repo / ".git" / "hooks"
    assert proc.stdout == installed(hooks)
    for hook in ("post-commit", "post-rewrite", "post-merge"):
        values = rendered(hooks / hook)
        assert (values["CFG"], values["SPOOL"], values["KEY"], values["AUTOSTART"]) == (
            str(cfg), str(default_spool), inbox.agent_key(str(cfg)), "yes")
    if (default_spool / "inbox").exists():
        pytest.skip(f"{default_spool} is in use: the hook would record there")

    # The first record has Python make the default spool, which needs the configuration: one line.
    proc = git_commit(repo, "Before the config [#26]", check=False)
    assert proc.returncode == 0
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hookagent: post-commit: could not record the commit: ")
    assert f"cannot read config {cfg}" in lines[0] and f"`hookagent backfill {repo}`" in lines[0]

    # Written, naming another spool than the default the hook has: the commit is recorded in the
    # configuration's spool (by Python), and one line says to install again.
    make_conf(cfg, tmp_path / "spool", made=False)
    proc = git_commit(repo, "After the config [#26]", check=False)
    assert proc.returncode == 0
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (f"hookagent: post-commit: recorded in {tmp_path / 'spool'}, the configuration's"
                        f" spool; the hook was installed with {default_spool}: run hookagent install {repo} again")
    assert not (default_spool / "inbox").exists()
    assert len(os.listdir(tmp_path / "spool" / "inbox")) == 1


def test_install_from_inside_the_work_tree_defaults_to_the_current_folder(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    (repo / "sub").mkdir()
    proc = hookagent("install", "--python", str(py), cwd=repo / "sub")
    assert proc.returncode == 0, proc.stderr
    assert (repo / ".git" / "hooks" / "post-commit").is_file()


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_core_hooks_path_is_honoured(tmp_path, fake, conf, absolute):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    # (a relative one inside the work tree is a folder the team commits: see test_team_hooks.py)
    where = tmp_path / "shared-hooks" if absolute else tmp_path / "relative-hooks"
    git(repo, "config", "core.hooksPath", str(where) if absolute else "../relative-hooks")
    proc = install(repo / ".", "--python", str(py), "--config", str(conf.path))
    assert proc.stdout == installed(where)
    assert hookfiles.is_ours(str(where / "post-commit")) and hookfiles.is_ours(str(where / "post-rewrite"))
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    git_commit(repo, "Through core.hooksPath [#3]")
    the_git_record(conf, repo)
    assert len(fakepython.wait(log)) == 1


def test_linked_worktree_installs_into_the_shared_hooks_and_fires_there(tmp_path, fake, conf):
    py, log = fake
    repo = git_work_tree(tmp_path / "main")
    linked = git_linked_worktree(repo, tmp_path / "linked")
    proc = install(linked, "--python", str(py), "--config", str(conf.path))
    assert proc.stdout == installed(repo / ".git" / "hooks")
    git_commit(linked, "in the linked worktree [#4]")
    # The linked worktree's own HEAD and branch, its commit read through the common git dir.
    the_git_record(conf, linked, head="ref: refs/heads/linked")
    assert len(fakepython.wait(log)) == 1


def test_post_commit_never_reads_a_terminal_on_stdin(tmp_path, fake):
    """No spool yet: the hook has Python make it (the fake makes none), its write then fails and it
    has Python record the commit instead. The fake reads stdin to its end each time: given the
    terminal, it would wait forever."""
    py, log = fake
    conf = make_conf(tmp_path / "conf.yaml", made=False)
    repo = git_work_tree(tmp_path / "work")
    git_commit(repo, "Made before the install [#5]")     # HEAD may reference a story
    install(repo, "--python", str(py), "--config", str(conf.path))
    master, slave = os.openpty()
    try:
        proc = subprocess.run([str(repo / ".git" / "hooks" / "post-commit")], cwd=repo, stdin=slave,
                              capture_output=True, timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0 and proc.stderr == b""
    (prepare,) = fakepython.prepare_calls(log)
    assert prepare["argv"][4:] == ["--prepare", "--vcs", "git", "--config", str(conf.path), "--spool",
                                   str(conf.spool), "post-commit", "--"]
    (fallback,) = fakepython.hook_calls(log)
    assert fallback["argv"] == fakepython.hook_argv("post-commit", "git", conf.path)
    assert prepare["stdin"] == fallback["stdin"] == ""
    assert len(fakepython.hook_started(log)) == 2


@pytest.mark.parametrize("env", [pytest.param({}, id="no-PATH"),
                                 pytest.param({"PATH": ""}, id="empty-PATH")])
def test_the_hook_gives_our_command_a_usable_path_in_an_empty_environment(tmp_path, fake, conf, env):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    git_commit(repo, "Made before the install [#7]")
    install(repo, "--python", str(py), "--config", str(conf.path))
    proc = subprocess.run([str(repo / ".git" / "hooks" / "post-commit")], cwd=repo, env=env,
                          capture_output=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and proc.stderr == b""
    the_git_record(conf, repo)                  # the hook found git on the PATH it gave itself
    (call,) = fakepython.wait(log)              # and the agent it started gets that PATH too
    assert "/usr/bin" in call["env"].get("PATH", "").split(":") and "LC_ALL" not in call["env"]


def test_the_hook_leaves_the_callers_locale_to_our_command_and_to_a_chained_hook(tmp_path, fake, conf):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    theirs_env = tmp_path / "theirs.env"
    write_script(repo / ".git" / "hooks" / "post-commit",
                 f'#!/bin/sh\nprintf %s "${{LC_ALL-unset}}" >{shlex.quote(str(theirs_env))}\n')
    install(repo, "--python", str(py), "--config", str(conf.path))
    env = dict(os.environ, LC_ALL="C.UTF-8")
    assert git_commit(repo, "Locale [#8]", env=env).returncode == 0
    the_git_record(conf, repo)
    (call,) = fakepython.wait(log)
    assert (call["env"].get("LC_ALL"), theirs_env.read_text()) == ("C.UTF-8", "C.UTF-8")


# --- bare repositories -------------------------------------------------------------------------

def test_bare_repository_gets_post_receive_and_a_real_push_gives_it_the_ref_lines(tmp_path, fake):
    py, log = fake
    bare = git_bare(tmp_path / "central.git")
    proc = install(bare, "--python", str(py))
    assert proc.stdout == f"installed post-receive in {bare / 'hooks'}\n"
    work = git_work_tree(tmp_path / "work")
    git(work, "tag", "v1")
    git_push(work, bare, "main", "v1")
    (call,) = fakepython.hook_calls(log)
    assert call["argv"] == fakepython.hook_argv("post-receive", "git")
    lines = sorted(call["stdin"].splitlines())
    assert lines == sorted([f"{ZERO} {rev(work)} refs/heads/main", f"{ZERO} {rev(work, 'v1')} refs/tags/v1"])
    assert call["stdin"].endswith("\n") and call["cwd"] == str(bare)


def test_foreign_post_receive_gets_the_same_stdin_and_its_exit_status_is_the_hooks(tmp_path, fake):
    py, log = fake
    bare = git_bare(tmp_path / "central.git")
    theirs_log = tmp_path / "theirs.log"
    theirs = fakepython.make(bare / "hooks" / "post-receive", theirs_log, status=5)
    original = theirs.read_bytes()
    install(bare, "--python", str(py))
    assert (bare / "hooks" / "hookagent-chained" / "post-receive").read_bytes() == original

    work = git_work_tree(tmp_path / "work")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    run(["git", "-C", str(work), "push", "-q", str(bare), "main"], env=env)
    (ours,) = fakepython.hook_calls(log)
    (them,) = fakepython.calls(theirs_log)
    assert ours["stdin"] == them["stdin"] == f"{ZERO} {rev(work)} refs/heads/main\n"
    assert them["argv"] == [] and them["name"] == "post-receive"     # its own name, kept by the folder
    assert list(tmpdir.iterdir()) == []            # the saved stdin is removed

    stdin = f"{rev(work)} {ZERO} refs/heads/gone\n"
    proc = subprocess.run([str(bare / "hooks" / "post-receive"), "x y"], cwd=bare, input=stdin.encode(),
                          capture_output=True, env=env)
    assert proc.returncode == 5
    assert fakepython.calls(theirs_log)[-1]["stdin"] == fakepython.hook_calls(log)[-1]["stdin"] == stdin
    assert fakepython.calls(theirs_log)[-1]["argv"] == ["x y"]
    assert after_dashes(fakepython.hook_calls(log)[-1]) == ["x y"]


# --- foreign hooks, idempotence, uninstall -----------------------------------------------------

def test_foreign_post_commit_is_kept_chained_and_restored_byte_for_byte(tmp_path, fake, conf):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    hooks = repo / ".git" / "hooks"
    theirs_log = tmp_path / "theirs.log"
    theirs = write_script(hooks / "post-commit", (
        b"#!/bin/sh\n# their own bytes \xff\xfe and a CRLF line\r\n"
        b"{ printf 'ARGV'; for a in \"$@\"; do printf ' <%s>' \"$a\"; done; printf '\\nSTDIN '; cat; }"
        b" >>" + str(theirs_log).encode() + b"\nexit 7\n"), mode=0o750)
    original = theirs.read_bytes()

    proc = install(repo, "--python", str(py), "--config", str(conf.path))
    assert proc.stdout == installed(hooks, " (kept your existing hook as hookagent-chained/post-commit; it still"
                                           " runs after ours, under its own name)")
    kept = hooks / "hookagent-chained" / "post-commit"
    assert kept.read_bytes() == original and mode(kept) == 0o750

    assert git_commit(repo, "Chained [#10]").returncode == 0     # git ignores post-commit's status
    the_git_record(conf, repo)
    assert len(fakepython.wait(log)) == 1 and theirs_log.read_text() == "ARGV\nSTDIN "

    # Run by hand with arguments and stdin: theirs gets both, whole; ours reads no stdin, and
    # HEAD, recorded already, is not recorded again (nor another agent started).
    proc = subprocess.run([str(hooks / "post-commit"), "a", "b c"], cwd=repo, input=b"for them",
                          capture_output=True)
    assert proc.returncode == 7
    assert theirs_log.read_text() == "ARGV\nSTDIN ARGV <a> <b c>\nSTDIN for them"
    first = the_git_record(conf, repo)
    assert len(fakepython.wait(log, settle=1.0)) == 1

    proc = hookagent("uninstall", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (f"removed post-commit from {hooks} (put back your hook from hookagent-chained/post-commit)\n"
                           f"removed post-rewrite from {hooks}\nremoved post-merge from {hooks}\n")
    assert (hooks / "post-commit").read_bytes() == original and mode(hooks / "post-commit") == 0o750
    assert not kept.exists() and not kept.parent.exists()
    git_commit(repo, "After the uninstall [#11]")
    assert list(conf.records().values()) == [first]
    assert len(fakepython.wait(log, settle=1.0)) == 1
    assert theirs_log.read_text().count("ARGV") == 3


def test_install_twice_is_idempotent_and_never_keeps_our_own_hook_as_foreign(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    hooks = repo / ".git" / "hooks"
    theirs_log = tmp_path / "theirs.log"
    original = fakepython.make(hooks / "post-commit", theirs_log).read_bytes()
    install(repo, "--python", str(py))
    proc = install(repo, "--python", str(py))
    assert proc.stdout == (f"post-commit in {hooks} is already installed and up to date"
                           " (your hookagent-chained/post-commit still runs after it)\n"
                           f"post-rewrite in {hooks} is already installed and up to date\n"
                           f"post-merge in {hooks} is already installed and up to date\n")
    other = make_conf(tmp_path / "other.yaml")
    proc = install(repo, "--python", str(py), "--config", str(other.path))
    assert proc.stdout == (f"updated post-commit in {hooks} (your hookagent-chained/post-commit still runs after it)\n"
                           f"updated post-rewrite in {hooks}\nupdated post-merge in {hooks}\n")
    assert (hooks / "hookagent-chained" / "post-commit").read_bytes() == original
    assert sorted(p.name for p in hooks.iterdir() if p.name.startswith("post-commit")) == ["post-commit"]
    assert os.listdir(hooks / "hookagent-chained") == ["post-commit"]
    git_commit(repo, "Installed three times [#12]")
    (ours,) = fakepython.wait(log)
    assert ours["argv"] == agent_argv(other)
    assert len(other.records()) == 1
    assert len(fakepython.calls(theirs_log)) == 1


@pytest.mark.parametrize("kept", ["hookagent-chained/post-commit", "post-commit.hookagent-orig"])
def test_a_foreign_hook_with_a_kept_original_already_there_is_refused_untouched(tmp_path, fake, capsys, kept):
    py, _ = fake
    repo = git_work_tree(tmp_path / "work")
    hooks = repo / ".git" / "hooks"
    write_script(hooks / "post-commit", "#!/bin/sh\necho new\n")
    write_script(hooks / kept, "#!/bin/sh\necho old\n")
    status, _, err = in_process(capsys, "install", str(repo), "--python", str(py))
    assert status == 2
    assert f"{hooks / kept} already exists; move one of them out of the way" in err
    assert (hooks / "post-commit").read_text() == "#!/bin/sh\necho new\n"
    assert (hooks / kept).read_text() == "#!/bin/sh\necho old\n"


def test_uninstall_without_our_hook_is_a_no_op_and_never_deletes_theirs(tmp_path):
    repo = git_work_tree(tmp_path / "work")
    hooks = repo / ".git" / "hooks"
    proc = hookagent("uninstall", str(repo))
    assert proc.returncode == 0 and proc.stdout == f"no hookagent hooks are installed in {hooks}; nothing to do\n"
    write_script(hooks / "post-commit", "#!/bin/sh\nexit 0\n")
    proc = hookagent("uninstall", str(repo), "--hooks", "post-commit")
    assert proc.returncode == 0
    assert proc.stdout == f"post-commit in {hooks} is not hookagent's; left as it is\n"
    assert (hooks / "post-commit").read_text() == "#!/bin/sh\nexit 0\n"


def test_uninstall_removes_ours_when_nothing_was_there_before(tmp_path, fake, conf):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py), "--config", str(conf.path))
    proc = hookagent("uninstall", str(repo))
    hooks = repo / ".git" / "hooks"
    assert proc.stdout == (f"removed post-commit from {hooks}\nremoved post-rewrite from {hooks}\n"
                           f"removed post-merge from {hooks}\n")
    assert sorted(p.name for p in hooks.iterdir() if not p.name.endswith(".sample")) == []
    git_commit(repo, "After the uninstall [#13]")
    assert conf.records() == {}
    assert fakepython.wait(log, 0, which=fakepython.hook_started, settle=1.0) == []


# --- a missing or broken interpreter -----------------------------------------------------------

@pytest.mark.parametrize("spool", ["made", "not-made"])
def test_missing_interpreter_prints_one_line_and_the_commit_succeeds(tmp_path, fake, spool):
    py, _ = fake
    conf = make_conf(tmp_path / "conf.yaml", made=spool == "made")
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py), "--config", str(conf.path))
    py.unlink()
    proc = git_commit(repo, "Torpedoes [#15]", check=False)
    assert proc.returncode == 0
    if spool == "made":       # recorded by sh alone; only the delivery needs the interpreter
        assert proc.stderr.decode() == (f"hookagent: post-commit: recorded, but no agent can start to deliver it:"
                                        f" interpreter {py} is missing; reinstall with hookagent install {repo}\n")
    else:                     # nothing can make the spool
        assert proc.stderr.decode() == (
            f"hookagent: post-commit: could not record the commit (no spool at {conf.spool}, and none can be made:"
            f" interpreter {py} is missing; reinstall with hookagent install {repo}); the commit itself is fine;"
            f" once fixed, `hookagent backfill {repo}` sends what was missed\n")
        assert not conf.spool.exists()
    assert git(repo, "log", "-1", "--format=%s").stdout.decode().strip() == "Torpedoes [#15]"


def test_missing_interpreter_still_leaves_a_record_the_agent_queues(tmp_path, fake, conf):
    """The commit does not wait for an interpreter: sh records it, and an agent run later (with a
    working interpreter) queues it."""
    from hookagent import config as config_mod
    from hookagent.agent.ingest import Inbox
    py, _ = fake
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py), "--config", str(conf.path))
    py.unlink()
    git_commit(repo, "Recorded without Python [#16]", check=False)
    the_git_record(conf, repo)
    got = Inbox(config_mod.load(str(conf.path)), Spool(str(conf.spool))).ingest()
    assert (got.records, got.queued, got.errors) == (1, 1, [])
    assert conf.records() == {}


@pytest.mark.parametrize("where", ["first-record", "post-receive"])
def test_an_interpreter_that_cannot_run_hookagent_gives_one_hint_and_exit_0(tmp_path, where):
    broken = fakepython.make(tmp_path / "bin" / "python", tmp_path / "log", status=1)
    if where == "first-record":     # the hook has the interpreter make the spool
        conf = make_conf(tmp_path / "conf.yaml", made=False)
        repo = git_work_tree(tmp_path / "work")
        git_commit(repo, "Made before the install [#17]")
        install(repo, "--python", str(broken), "--config", str(conf.path))
        hook = "post-commit"
        proc = subprocess.run([str(repo / ".git" / "hooks" / hook)], cwd=repo, capture_output=True,
                              stdin=subprocess.DEVNULL)
    else:                           # the hook runs `hookagent hook post-receive`
        repo = git_bare(tmp_path / "central.git")
        install(repo, "--python", str(broken))
        hook = "post-receive"
        proc = subprocess.run([str(repo / "hooks" / hook)], cwd=repo, capture_output=True,
                              input=f"{ZERO} {'1' * 40} refs/heads/main\n".encode())
    assert proc.returncode == 0
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1 and proc.stderr.decode().endswith("\n"), proc.stderr
    assert lines[0].startswith(f"hookagent: {hook}: ") and f"{broken} could not run hookagent (exit 1)" in lines[0]
    assert lines[0].endswith(f"reinstall with hookagent install {repo}")


# --- what PATH must be, and --hooks --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["plain", "missing", "svn-wc-like"])
def test_anything_else_is_refused_with_what_path_must_be(tmp_path, kind, capsys):
    target = tmp_path / "thing"
    if kind != "missing":
        target.mkdir()
    if kind == "svn-wc-like":
        (target / ".svn").mkdir()
    status, _, err = in_process(capsys, "install", str(target))
    assert status == 2
    assert err.startswith("hookagent: ") and len(err.splitlines()) == 1
    assert "PATH must be a git work tree (or linked worktree), a bare git repository, or an svn" in err


def test_hooks_flag_is_checked_against_the_repository_kind(tmp_path, fake):
    py, _ = fake
    repo = git_work_tree(tmp_path / "work")
    proc = hookagent("install", str(repo), "--python", str(py), "--hooks", "post-revprop-change")
    assert proc.returncode == 2
    assert "a git repository takes post-commit and/or post-rewrite and/or post-merge and/or post-receive" in proc.stderr
    proc = install(repo, "--python", str(py), "--hooks", "post-commit,post-receive")
    assert proc.stdout.count("installed ") == 2 and "post-rewrite" not in proc.stdout
    proc = hookagent("uninstall", str(repo))
    assert proc.stdout.count("removed ") == 2


# --- svn ---------------------------------------------------------------------------------------

needs_svn = pytest.mark.skipif(not have_svn(), reason="svn, svnadmin and svnlook are needed")


@needs_svn
def test_svn_commit_over_file_url_fires_post_commit_in_an_empty_environment(tmp_path, fake, conf):
    py, log = fake
    repos = svn_repository(tmp_path / "svnrepo")
    proc = install(repos, "--python", str(py), "--config", str(conf.path), "--hooks", "post-commit,post-revprop-change")
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"installed post-commit in {repos / 'hooks'}",
                         f"installed post-revprop-change in {repos / 'hooks'}"]
    assert "needs a pre-revprop-change hook" in lines[2] and "svn:log" in lines[2]

    confdir = tmp_path / "svnconf"
    wc = svn_checkout(repos, tmp_path / "wc", confdir)
    svn_commit(wc, "Shields up [#7]", confdir)
    # The revision number, recorded by sh (svnlook, found with svn's empty environment, said the
    # log may hold a reference); the agent reads the revision itself.
    name = f"{conf.key}.svn.{inbox.path_key(str(repos))}.1"
    record = conf.records()[name]
    assert list(conf.records()) == [name] and record.complete and record.objects == []
    assert os.path.realpath(record.repo) == os.path.realpath(repos)
    assert record.headers == {"hook": "post-commit", "vcs": "svn", "key": conf.key, "repo": record.repo,
                              "revision": "1"}
    (agent,) = fakepython.wait(log)
    assert agent["argv"] == agent_argv(conf) and agent["stdin"] == ""
    assert "HOME" not in agent["env"] and "GIT_CONFIG_GLOBAL" not in agent["env"]   # svn empties the environment

    write_script(repos / "hooks" / "pre-revprop-change",
                 '#!/bin/sh\n[ "$4" = svn:log ] && exit 0\necho "only svn:log" >&2\nexit 1\n')
    svn("propset", "-q", "--revprop", "-r", "1", "svn:log", "Shields up [#7 #8]", svn_url(repos),
        config_dir=confdir)
    call = fakepython.hook_calls(log)[-1]
    args = after_dashes(call)
    assert call["argv"] == fakepython.hook_argv("post-revprop-change", "svn", conf.path, *args)
    assert os.path.realpath(args[0]) == os.path.realpath(repos)
    import pwd     # svn names the local account for file:// access (USER may be unset)
    assert args[1:] == ["1", pwd.getpwuid(os.getuid()).pw_name, "svn:log", "M"]
    assert call["stdin"] == "Shields up [#7]"
    assert "HOME" not in call["env"]
    assert len(fakepython.wait(log, 2, which=fakepython.hook_started)) == 2   # no agent for a log edit here


@needs_svn
def test_svn_hooks_give_our_command_a_path_and_the_svnlook_found_at_install(tmp_path, fake, conf):
    """svn runs hooks with an empty environment: the Python the hook starts (the agent after a
    commit, `hook post-revprop-change` for a log edit) gets a PATH and the svnlook install found."""
    py, log = fake
    repos = svn_repository(tmp_path / "svnrepo")
    install(repos, "--python", str(py), "--config", str(conf.path), "--hooks", "post-commit,post-revprop-change")
    write_script(repos / "hooks" / "pre-revprop-change", "#!/bin/sh\nexit 0\n")
    confdir = tmp_path / "svnconf"
    wc = svn_checkout(repos, tmp_path / "wc", confdir)
    svn_commit(wc, "Shields up [#7]", confdir)
    (agent,) = fakepython.wait(log)
    svn("propset", "-q", "--revprop", "-r", "1", "svn:log", "Shields up [#7 #8]", svn_url(repos),
        config_dir=confdir)
    (edit,) = fakepython.hook_calls(log)
    svnlook = os.path.abspath(shutil.which("svnlook"))
    for call in (agent, edit):
        assert "/usr/bin" in call["env"].get("PATH", "").split(":")
        assert call["env"].get("HOOKAGENT_SVNLOOK") == svnlook


@needs_svn
def test_svn_uninstall_restores_a_foreign_post_commit(tmp_path, fake, conf):
    py, log = fake
    repos = svn_repository(tmp_path / "svnrepo")
    theirs_log = tmp_path / "theirs.log"
    original = fakepython.make(repos / "hooks" / "post-commit", theirs_log).read_bytes()
    install(repos, "--python", str(py), "--config", str(conf.path))
    confdir = tmp_path / "svnconf"
    wc = svn_checkout(repos, tmp_path / "wc", confdir)
    svn_commit(wc, "one [#21]", confdir)
    (them,) = fakepython.calls(theirs_log)
    (record,) = conf.records().values()
    assert [record.repo, record.headers["revision"]] == them["argv"][:2]    # ours had the same REPOS REV
    assert len(fakepython.wait(log)) == 1
    hookagent("uninstall", str(repos))
    assert (repos / "hooks" / "post-commit").read_bytes() == original


# --- the real interpreter, installer.py, rendered examples -------------------------------------

def test_installer_py_works_from_the_checkout_alone(tmp_path):
    """-I -S: no site-packages, no script folder on sys.path (no PyYAML either): only installer.py's
    own insertion finds hookagent, and the interpreter the hook will run reads the configuration
    (here the default lookup's) for the values baked into the hook."""
    repo = git_work_tree(tmp_path / "work")
    xdg = tmp_path / "xdg"
    conf = make_conf(xdg / "hookagent" / "config.yaml", tmp_path / "spool", made=False, agent={"autostart": False})
    env = dict(os.environ, XDG_CONFIG_HOME=str(xdg))
    proc = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "installer.py"), str(repo), "--python",
                           sys.executable], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    hooks = repo / ".git" / "hooks"
    assert proc.stdout == installed(hooks)
    values = rendered(hooks / "post-commit")
    assert (values["CFG"], values["SPOOL"], values["KEY"], values["AUTOSTART"]) == ("", str(conf.spool), conf.key, "no")
    proc = git_commit(repo, "Installed from the checkout [#22]", env=env)
    assert proc.stderr == b""
    the_git_record(conf, repo)


def test_installer_py_without_pyyaml_takes_an_existing_config(tmp_path):
    repo = git_work_tree(tmp_path / "work")
    conf = make_conf(tmp_path / "conf.yaml", made=False, agent={"autostart": False})
    proc = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "installer.py"), str(repo), "--python",
                           sys.executable, "--config", str(conf.path)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    values = rendered(repo / ".git" / "hooks" / "post-commit")
    assert (values["CFG"], values["SPOOL"], values["KEY"], values["AUTOSTART"]) == (
        str(conf.path), str(conf.spool), conf.key, "no")


def test_real_interpreter_is_baked_in_and_the_work_tree_cannot_shadow_hookagent(tmp_path):
    from testing.site import Site
    (tmp_path / "site").mkdir()
    site = Site(tmp_path / "site", "http://127.0.0.1:9/")   # autostart off: no agent is started
    repo = git_work_tree(tmp_path / "work")
    marker = tmp_path / "shadowed"
    shadow = repo / "hookagent"
    shadow.mkdir()
    (shadow / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (shadow / "__main__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    install(repo, "--config", str(site.config_path))
    text = (repo / ".git" / "hooks" / "post-commit").read_text()
    assert f"\nPY={sys.executable}\n" in text
    # The first record: the hook has the real interpreter make the spool, run in the work tree.
    assert not Path(site.data["spool_dir"]).exists()
    proc = git_commit(repo, "Shadow [#23]")
    assert proc.returncode == 0 and proc.stderr == b""
    assert os.listdir(Path(site.data["spool_dir"]) / "inbox") == [
        f"{inbox.agent_key(str(site.config_path))}.git.{rev(repo)}"]
    assert not marker.exists()


def test_rendered_examples_under_hooks_are_up_to_date():
    stale = [rel for rel, text in hookfiles.examples().items()
             if not (ROOT / rel).is_file() or (ROOT / rel).read_text(encoding="utf-8") != text]
    assert not stale, ("stale examples; regenerate with: .venv/bin/python -c 'from hookagent import"
                       " hookfiles; hookfiles.write_examples(\".\")'")
    for rel in hookfiles.EXAMPLES:
        for sh in ("dash", "bash"):
            if shutil.which(sh):
                run([sh, "-n", str(ROOT / rel)])


def test_render_quotes_every_value_for_sh(tmp_path, fake):
    py, log = fake
    odd = tmp_path / "it's a $dir `x`"
    odd.mkdir()
    odd_py = fakepython.make(odd / "py thon", log)
    repo = git_work_tree(odd / "work tree")
    conf = make_conf(odd / "c;fg $(touch pwned).yaml", odd / "spool \"$(touch pwned)\" 'x' `y`")
    install(repo, "--python", str(odd_py), "--config", str(conf.path))
    git_commit(repo, "Odd paths [#25]")
    the_git_record(conf, repo)                 # SPOOL, KEY and the work tree's path came through whole
    (call,) = fakepython.wait(log)
    assert call["argv"] == agent_argv(conf)
    assert not list(tmp_path.rglob("pwned"))


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="needs a system python3")
def test_installer_py_run_by_a_python_without_hookagent_bakes_in_one_that_has_it(tmp_path):
    """`python3 installer.py` with a system Python that cannot import hookagent: the hook gets
    the checkout's .venv interpreter (or hookagent's on PATH), not one that would record nothing."""
    probe = subprocess.run(["/usr/bin/python3", "-I", "-c", "import hookagent"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("the system python3 has hookagent installed")
    repo = git_work_tree(tmp_path / "work")
    proc = subprocess.run(["/usr/bin/python3", str(ROOT / "installer.py"), str(repo)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "cannot import hookagent; the hook will use" in proc.stdout
    text = (repo / ".git" / "hooks" / "post-commit").read_text()
    baked = next(line for line in text.splitlines() if line.startswith("PY="))[3:].strip("'")
    assert subprocess.run([baked, "-I", "-c", "import hookagent"]).returncode == 0


def test_install_refuses_a_config_that_does_not_load(tmp_path, capsys):
    repo = git_work_tree(tmp_path / "work")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tracker: {api: v9}\n")
    status, _, err = in_process(capsys, "install", str(repo), "--config", str(bad))
    assert status == 2 and "tracker.api" in err
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
