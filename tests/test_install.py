"""Installing and removing hooks, with real repositories and real commits and pushes firing them.

The hooks are rendered with `--python` pointing at a fake interpreter (testing/fakepython.py) that
logs its argv, stdin, environment and working directory: that tests what the hook passes on without
depending on the `hook` command. One test runs the real interpreter end to end.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hookagent import hookfiles
from testing import fakepython
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


@pytest.fixture
def fake(tmp_path):
    """(interpreter path, log path)."""
    log = tmp_path / "ours.log"
    return fakepython.make(tmp_path / "bin" / "python", log), log


def after_dashes(call: dict) -> list[str]:
    argv = call["argv"]
    return argv[argv.index("--") + 1:]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- git work trees ----------------------------------------------------------------------------

def test_work_tree_install_then_a_real_commit_fires_post_commit(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    cfg = tmp_path / "conf.yaml"
    cfg.write_text("{}\n")
    proc = install(repo, "--python", str(py), "--config", str(cfg))
    hooks = repo / ".git" / "hooks"
    assert proc.stdout == f"installed post-commit in {hooks}\n"
    assert mode(hooks / "post-commit") == 0o755 and not (hooks / "post-receive").exists()

    assert git_commit(repo, "Torpedoes [#42]").returncode == 0
    calls = fakepython.hook_calls(log)
    assert len(calls) == 1
    assert calls[0]["argv"] == [*fakepython.PREFIX, "hook", "--config", str(cfg), "post-commit", "--"]
    assert calls[0]["stdin"] == "" and calls[0]["cwd"] == str(repo)


@pytest.mark.parametrize("how", ["none", "env", "flag"])
def test_config_baked_in_from_flag_or_env_else_left_to_the_default_lookup(tmp_path, fake, how):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    env = dict(os.environ)
    args = ["--python", str(py)]
    if how == "env":
        env["HOOKAGENT_CONFIG"] = "rel/conf.yaml"          # relative: made absolute at install
    elif how == "flag":
        args += ["--config", "rel/conf.yaml"]
    install(repo, *args, cwd=tmp_path, env=env)
    git_commit(repo)
    (call,) = fakepython.hook_calls(log)
    expected = [] if how == "none" else ["--config", str(tmp_path / "rel" / "conf.yaml")]
    assert call["argv"] == [*fakepython.PREFIX, "hook", *expected, "post-commit", "--"]


def test_install_from_inside_the_work_tree_defaults_to_the_current_folder(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    (repo / "sub").mkdir()
    proc = hookagent("install", "--python", str(py), cwd=repo / "sub")
    assert proc.returncode == 0, proc.stderr
    assert (repo / ".git" / "hooks" / "post-commit").is_file()


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_core_hooks_path_is_honoured(tmp_path, fake, absolute):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    where = tmp_path / "shared-hooks" if absolute else repo / ".githooks"
    git(repo, "config", "core.hooksPath", str(where) if absolute else ".githooks")
    proc = install(repo / ".", "--python", str(py))
    assert proc.stdout == f"installed post-commit in {where}\n"
    assert hookfiles.is_ours(str(where / "post-commit"))
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
    git_commit(repo)
    assert len(fakepython.hook_calls(log)) == 1


def test_linked_worktree_installs_into_the_shared_hooks_and_fires_there(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "main")
    linked = git_linked_worktree(repo, tmp_path / "linked")
    proc = install(linked, "--python", str(py))
    assert proc.stdout == f"installed post-commit in {repo / '.git' / 'hooks'}\n"
    git_commit(linked, "in the linked worktree")
    (call,) = fakepython.hook_calls(log)
    assert call["cwd"] == str(linked)


def test_post_commit_never_reads_a_terminal_on_stdin(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py))
    master, slave = os.openpty()
    try:  # the fake reads stdin to its end: given the terminal, it would wait forever
        proc = subprocess.run([str(repo / ".git" / "hooks" / "post-commit")], cwd=repo, stdin=slave,
                              capture_output=True, timeout=120)
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 0 and len(fakepython.hook_calls(log)) == 1


@pytest.mark.parametrize("env", [{}, {"PATH": ""}], ids=["no-PATH", "empty-PATH"])
def test_the_hook_gives_our_command_a_usable_path_in_an_empty_environment(tmp_path, fake, env):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py))
    proc = subprocess.run([str(repo / ".git" / "hooks" / "post-commit")], cwd=repo, env=env,
                          capture_output=True, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and proc.stderr == b""
    (call,) = fakepython.hook_calls(log)
    assert "/usr/bin" in call["env"]["PATH"].split(":") and "LC_ALL" not in call["env"]


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
    assert call["argv"] == [*fakepython.PREFIX, "hook", "post-receive", "--"]
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
    assert (bare / "hooks" / "post-receive.hookagent-orig").read_bytes() == original

    work = git_work_tree(tmp_path / "work")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    run(["git", "-C", str(work), "push", "-q", str(bare), "main"], env=env)
    (ours,) = fakepython.hook_calls(log)
    (them,) = fakepython.calls(theirs_log)
    assert ours["stdin"] == them["stdin"] == f"{ZERO} {rev(work)} refs/heads/main\n"
    assert them["argv"] == [] and them["name"] == "post-receive.hookagent-orig"
    assert list(tmpdir.iterdir()) == []            # the saved stdin is removed

    stdin = f"{rev(work)} {ZERO} refs/heads/gone\n"
    proc = subprocess.run([str(bare / "hooks" / "post-receive"), "x y"], cwd=bare, input=stdin.encode(),
                          capture_output=True, env=env)
    assert proc.returncode == 5
    assert fakepython.calls(theirs_log)[-1]["stdin"] == fakepython.hook_calls(log)[-1]["stdin"] == stdin
    assert fakepython.calls(theirs_log)[-1]["argv"] == ["x y"]
    assert after_dashes(fakepython.hook_calls(log)[-1]) == ["x y"]


# --- foreign hooks, idempotence, uninstall -----------------------------------------------------

def test_foreign_post_commit_is_kept_chained_and_restored_byte_for_byte(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    hooks = repo / ".git" / "hooks"
    theirs_log = tmp_path / "theirs.log"
    theirs = write_script(hooks / "post-commit", (
        b"#!/bin/sh\n# their own bytes \xff\xfe and a CRLF line\r\n"
        b"{ printf 'ARGV'; for a in \"$@\"; do printf ' <%s>' \"$a\"; done; printf '\\nSTDIN '; cat; }"
        b" >>" + str(theirs_log).encode() + b"\nexit 7\n"), mode=0o750)
    original = theirs.read_bytes()

    proc = install(repo, "--python", str(py))
    assert proc.stdout == (f"installed post-commit in {hooks} (kept your existing hook as"
                           " post-commit.hookagent-orig)\n")
    kept = hooks / "post-commit.hookagent-orig"
    assert kept.read_bytes() == original and mode(kept) == 0o750

    assert git_commit(repo).returncode == 0        # git ignores post-commit's status
    assert len(fakepython.hook_calls(log)) == 1 and theirs_log.read_text() == "ARGV\nSTDIN "

    proc = subprocess.run([str(hooks / "post-commit"), "a", "b c"], cwd=repo, input=b"for them",
                          capture_output=True)
    assert proc.returncode == 7
    assert theirs_log.read_text() == "ARGV\nSTDIN ARGV <a> <b c>\nSTDIN for them"
    ours = fakepython.hook_calls(log)[-1]
    assert after_dashes(ours) == ["a", "b c"] and ours["stdin"] == ""

    proc = hookagent("uninstall", str(repo))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"removed post-commit from {hooks} (put back your hook from post-commit.hookagent-orig)\n"
    assert (hooks / "post-commit").read_bytes() == original and mode(hooks / "post-commit") == 0o750
    assert not kept.exists()
    git_commit(repo)
    assert len(fakepython.hook_calls(log)) == 2
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
                           " (your post-commit.hookagent-orig still runs after it)\n")
    proc = install(repo, "--python", str(py), "--config", str(tmp_path / "other.yaml"))
    assert proc.stdout.startswith(f"updated post-commit in {hooks}")
    assert (hooks / "post-commit.hookagent-orig").read_bytes() == original
    assert sorted(p.name for p in hooks.iterdir() if p.name.startswith("post-commit")) == [
        "post-commit", "post-commit.hookagent-orig"]
    git_commit(repo)
    (ours,) = fakepython.hook_calls(log)
    assert ours["argv"][4:6] == ["--config", str(tmp_path / "other.yaml")]
    assert len(fakepython.calls(theirs_log)) == 1


def test_a_foreign_hook_with_a_kept_original_already_there_is_refused_untouched(tmp_path, fake, capsys):
    py, _ = fake
    repo = git_work_tree(tmp_path / "work")
    hooks = repo / ".git" / "hooks"
    write_script(hooks / "post-commit", "#!/bin/sh\necho new\n")
    write_script(hooks / "post-commit.hookagent-orig", "#!/bin/sh\necho old\n")
    status, _, err = in_process(capsys, "install", str(repo), "--python", str(py))
    assert status == 2
    assert "already exists; move one of them out of the way" in err
    assert (hooks / "post-commit").read_text() == "#!/bin/sh\necho new\n"
    assert (hooks / "post-commit.hookagent-orig").read_text() == "#!/bin/sh\necho old\n"


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


def test_uninstall_removes_ours_when_nothing_was_there_before(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py))
    proc = hookagent("uninstall", str(repo))
    assert proc.stdout == f"removed post-commit from {repo / '.git' / 'hooks'}\n"
    git_commit(repo)
    assert fakepython.hook_calls(log) == []


# --- a missing or broken interpreter -----------------------------------------------------------

def only_git_on_path(tmp_path: Path, extra: dict[str, Path] | None = None) -> dict[str, str]:
    """An environment whose PATH holds git (and the given extra commands) and nothing else."""
    bindir = tmp_path / "only-git"
    bindir.mkdir(exist_ok=True)
    (bindir / "git").symlink_to(shutil.which("git"))
    for name, target in (extra or {}).items():
        (bindir / name).symlink_to(target)
    return dict(os.environ, PATH=str(bindir))


def test_missing_interpreter_prints_one_line_and_the_commit_succeeds(tmp_path, fake):
    py, _ = fake
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py))
    py.unlink()
    proc = git_commit(repo, env=only_git_on_path(tmp_path), check=False)
    assert proc.returncode == 0
    assert proc.stderr.decode() == f"hookagent: interpreter {py} missing; reinstall with hookagent install {repo}\n"
    assert git(repo, "log", "-1", "--format=%s").stdout.decode().strip() == "change"


def test_missing_interpreter_falls_back_to_hookagent_on_path(tmp_path, fake):
    py, _ = fake
    repo = git_work_tree(tmp_path / "work")
    install(repo, "--python", str(py))
    py.unlink()
    log = tmp_path / "onpath.log"
    onpath = fakepython.make(tmp_path / "elsewhere" / "hookagent", log)
    proc = git_commit(repo, env=only_git_on_path(tmp_path, {"hookagent": onpath}), check=False)
    assert proc.returncode == 0 and proc.stderr == b""
    (call,) = fakepython.calls(log)
    assert call["argv"] == ["hook", "post-commit", "--"]


def test_an_interpreter_that_cannot_run_hookagent_gives_one_hint_and_exit_0(tmp_path):
    repo = git_work_tree(tmp_path / "work")
    broken = fakepython.make(tmp_path / "bin" / "python", tmp_path / "log", status=1)
    install(repo, "--python", str(broken))
    proc = subprocess.run([str(repo / ".git" / "hooks" / "post-commit")], cwd=repo, capture_output=True,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0
    assert proc.stderr.decode() == (f"hookagent: {broken} could not run hookagent (exit 1); reinstall with"
                                    f" hookagent install {repo}\n")


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
    assert proc.returncode == 2 and "a git repository takes post-commit and/or post-receive" in proc.stderr
    proc = install(repo, "--python", str(py), "--hooks", "post-commit,post-receive")
    assert proc.stdout.count("installed ") == 2
    proc = hookagent("uninstall", str(repo))
    assert proc.stdout.count("removed ") == 2


# --- svn ---------------------------------------------------------------------------------------

needs_svn = pytest.mark.skipif(not have_svn(), reason="svn, svnadmin and svnlook are needed")


@needs_svn
def test_svn_commit_over_file_url_fires_post_commit_in_an_empty_environment(tmp_path, fake):
    py, log = fake
    repos = svn_repository(tmp_path / "svnrepo")
    proc = install(repos, "--python", str(py), "--hooks", "post-commit,post-revprop-change")
    lines = proc.stdout.splitlines()
    assert lines[:2] == [f"installed post-commit in {repos / 'hooks'}",
                         f"installed post-revprop-change in {repos / 'hooks'}"]
    assert "needs a pre-revprop-change hook" in lines[2] and "svn:log" in lines[2]

    confdir = tmp_path / "svnconf"
    wc = svn_checkout(repos, tmp_path / "wc", confdir)
    svn_commit(wc, "Shields up [#7]", confdir)
    (call,) = fakepython.hook_calls(log)
    args = after_dashes(call)
    assert call["argv"][:5] == [*fakepython.PREFIX, "hook", "post-commit"]
    assert os.path.realpath(args[0]) == os.path.realpath(repos) and args[1] == "1"
    env = call["env"]
    assert "HOME" not in env and "GIT_CONFIG_GLOBAL" not in env   # svn empties the environment
    assert "/usr/bin" in env["PATH"].split(":") and env["LC_ALL"] == "C.UTF-8"   # the shell's or ours
    assert env["HOOKAGENT_SVNLOOK"] == os.path.abspath(shutil.which("svnlook"))

    write_script(repos / "hooks" / "pre-revprop-change",
                 '#!/bin/sh\n[ "$4" = svn:log ] && exit 0\necho "only svn:log" >&2\nexit 1\n')
    svn("propset", "-q", "--revprop", "-r", "1", "svn:log", "Shields up [#7 #8]", svn_url(repos),
        config_dir=confdir)
    call = fakepython.hook_calls(log)[-1]
    assert call["argv"][4] == "post-revprop-change"
    assert after_dashes(call)[1:] == ["1", os.environ.get("USER") or after_dashes(call)[2], "svn:log", "M"]
    assert call["stdin"] == "Shields up [#7]"


@needs_svn
def test_svn_uninstall_restores_a_foreign_post_commit(tmp_path, fake):
    py, log = fake
    repos = svn_repository(tmp_path / "svnrepo")
    theirs_log = tmp_path / "theirs.log"
    original = fakepython.make(repos / "hooks" / "post-commit", theirs_log).read_bytes()
    install(repos, "--python", str(py))
    confdir = tmp_path / "svnconf"
    wc = svn_checkout(repos, tmp_path / "wc", confdir)
    svn_commit(wc, "one", confdir)
    assert len(fakepython.hook_calls(log)) == 1 and len(fakepython.calls(theirs_log)) == 1
    assert after_dashes(fakepython.hook_calls(log)[0])[:2] == fakepython.calls(theirs_log)[0]["argv"][:2]
    hookagent("uninstall", str(repos))
    assert (repos / "hooks" / "post-commit").read_bytes() == original


# --- the real interpreter, installer.py, rendered examples -------------------------------------

def test_installer_py_works_from_the_checkout_alone(tmp_path, fake):
    py, log = fake
    repo = git_work_tree(tmp_path / "work")
    # -I -S: no site-packages, no script folder on sys.path; only installer.py's own insertion finds us.
    proc = subprocess.run([sys.executable, "-I", "-S", str(ROOT / "installer.py"), str(repo), "--python", str(py)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"installed post-commit in {repo / '.git' / 'hooks'}\n"
    git_commit(repo)
    assert len(fakepython.hook_calls(log)) == 1


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
    proc = git_commit(repo, "no story")
    assert proc.returncode == 0 and b"could not run hookagent" not in proc.stderr
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
    cfg = odd / "c;fg $(touch pwned).yaml"
    install(repo, "--python", str(odd_py), "--config", str(cfg))
    git_commit(repo)
    (call,) = fakepython.hook_calls(log)
    assert call["argv"][4:6] == ["--config", str(cfg)]
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
