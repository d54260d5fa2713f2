"""`hookagent doctor [PATH]`: one line per check, as the user who will run the hook, with the fix.

Every test starts from a setup that works for real (a work tree or a bare repository with our
hooks installed by `hookagent install`, a config, a token file and the devserver), breaks one
thing for real (a mode, a git config, a file, the server) and checks the line doctor prints for
it and its exit status: 0 when nothing would stop delivery, 1 when something would.

Platforms that do not run here are reproduced from their published hook scripts and layouts:
Gitea's post-receive dispatcher (modules/repository/hooks.go: it runs every executable in
`hooks/<basename $0>.d/`), husky 9's `.husky/_` (each stub sources `_/h`, which runs
`.husky/<basename $0>`), and gitolite's repo-specific hooks (its trigger writes a multi-hook
driver, which runs every `$0.*`, symlinked as `hooks/post-receive`; an update hook of gitolite's).
"""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hookagent.devserver import DevServer
from testing import accounts, tls
from testing.repos import free_port, git, git_bare, write_script
from testing.site import TOKEN, Site, commit_file, work_tree_with_hook
from testing.wait import wait_until

LOGIN = pwd.getpwuid(os.geteuid()).pw_name
ME = f"{LOGIN} (uid {os.geteuid()})"
CHECKS = ["post-commit", "post-rewrite", "post-merge", "interpreter", "config", "spool", "token", "tracker", "agent", "queue"]


def doctor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hookagent", "doctor", *map(str, args)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, env=env, timeout=300)


def lines(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """Each line doctor printed, by the check it names."""
    out = {}
    for line in proc.stdout.splitlines():
        check = line[5:].split(":", 1)[0]
        out[check] = line
    return out


def failing(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]


@pytest.fixture
def site(tmp_path, server) -> Site:
    return Site(tmp_path, server.url, api="v5", agent={"autostart": True})


@pytest.fixture
def repo(tmp_path, site) -> Path:
    return work_tree_with_hook(tmp_path, site)


def test_a_healthy_work_tree_is_all_ok_and_exit_0(repo, site, server):
    commit_file(repo, "Fix the thing [#101]")
    assert wait_until(lambda: len(server.received()) == 1)    # the whole path works for real
    proc = doctor(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = lines(proc)
    assert list(found) == CHECKS
    assert all(line.startswith("ok   ") for line in found.values()), proc.stdout
    assert f"GET {server.url}/services/v5/me answered 200" in found["tracker"]
    assert f"git runs {repo}/.git/hooks/post-commit: ours" in found["post-commit"]
    assert TOKEN not in proc.stdout + proc.stderr

    proc = doctor(repo, "--json")
    assert proc.returncode == 0
    report = json.loads(proc.stdout)
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]] == CHECKS
    assert {c["level"] for c in report["checks"]} == {"ok"}


def test_a_hook_that_is_not_executable_fails(repo):
    hook = repo / ".git" / "hooks" / "post-commit"
    hook.chmod(0o644)
    proc = doctor(repo)
    assert proc.returncode == 1
    assert failing(proc) == [f"FAIL post-commit: git skips {hook}: it is not executable by {ME}"
                             f" \u2014 fix: chmod +x {hook}"]


def test_core_hooks_path_pointing_elsewhere_fails_saying_where_git_looks(repo):
    (repo / "team-hooks").mkdir()
    git(repo, "config", "core.hooksPath", "team-hooks")
    proc = doctor(repo)
    assert proc.returncode == 1
    line = lines(proc)["post-commit"]
    assert line.startswith(f"FAIL post-commit: git runs hooks from {repo}/team-hooks (core.hooksPath, local scope,"
                           f" file:.git/config) and there is no post-commit there; ours is in"
                           f" {repo}/.git/hooks/post-commit, which git does not run \u2014 fix: hookagent install {repo}")
    assert "remove core.hooksPath from file:.git/config" in line


def test_a_chained_hook_that_is_a_symlink_to_ours_is_a_recursion(repo):
    hooks = repo / ".git" / "hooks"
    (hooks / "post-commit.hookagent-orig").symlink_to("post-commit")   # no commit is made: it would not end
    proc = doctor(repo)
    assert proc.returncode == 1
    assert failing(proc) == [
        f"FAIL post-commit: {hooks}/post-commit.hookagent-orig, the hook ours runs after itself, is the same file"
        " as post-commit (a symlink to post-commit): the hook would run itself without end (a commit or push"
        f" that never ends) \u2014 fix: rm {hooks}/post-commit.hookagent-orig (if it held another hook, put that"
        " hook back there)"]


def test_a_copy_of_ours_chained_is_a_recursion_too(repo):
    hooks = repo / ".git" / "hooks"
    shutil.copy2(hooks / "post-commit", hooks / "post-commit.hookagent-orig")
    proc = doctor(repo)
    assert proc.returncode == 1
    assert "is a hook of ours too: the hook would run itself without end" in lines(proc)["post-commit"]


def test_a_missing_interpreter_fails_and_so_does_starting_an_agent(tmp_path, site):
    python = write_script(tmp_path / "bin" / "python3", f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(work), "--config", str(site.config_path),
                           "--python", str(python)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    python.unlink()
    proc = doctor(work)
    assert proc.returncode == 1
    found = lines(proc)
    assert found["interpreter"] == (
        f"FAIL interpreter: {python}, the interpreter baked into the hook, is missing: the hook can neither check"
        f" the configuration nor start an agent \u2014 fix: hookagent install {work} --python INTERPRETER (one that"
        " has hookagent; for a checkout, .venv/bin/python after scripts/setup)")
    assert found["agent"].startswith("FAIL agent: none runs, and the hook cannot start one")
    assert found["config"].startswith("ok   config: ")   # checked as that user with this interpreter instead


def test_a_world_writable_spool_fails(repo, site):
    spool = site.prepared().root
    os.chmod(spool, 0o777)
    proc = doctor(repo)
    assert proc.returncode == 1
    assert failing(proc) == [f"FAIL spool: {spool} is world-writable (mode 0777): the hook and the agent refuse it"
                             f" \u2014 fix: chmod o-rwx {spool}"]


def test_a_group_readable_token_warns_and_exits_0(repo, site):
    site.token_file.chmod(0o640)
    proc = doctor(repo)
    assert proc.returncode == 0, proc.stdout
    assert lines(proc)["token"] == (f"warn token: {site.token_file} is readable by its group or others (mode 0640)"
                                    f" \u2014 fix: chmod 600 {site.token_file}")
    assert not failing(proc)


def test_a_token_only_a_systemd_service_has_fails_where_the_hooks_start_agents(repo, site):
    """tracker.token_credential alone: the agents the hooks start find no token (FAIL); with
    agent.autostart off, the service reads it and the hooks' user needs none (ok)."""
    del site.data["tracker"]["token_file"]
    site.data["tracker"]["token_credential"] = "tracker-token"
    site.write()
    proc = doctor(repo)
    assert proc.returncode == 1
    assert lines(proc)["token"] == ("FAIL token: only the systemd credential tracker-token (tracker.token_credential):"
                                    " the agents the hooks start (agent.autostart) have none \u2014 fix: set"
                                    " agent.autostart: false where the service delivers (then install again), or name"
                                    " a file the hooks' user can read in tracker.token_file")
    site.data["agent"]["autostart"] = False
    site.write()
    assert lines(doctor(repo))["token"] == (f"ok   token: the systemd credential tracker-token (tracker.token_credential),"
                                            f" read by the agent that delivers (`hookagent run`), not by {ME}:"
                                            " agent.autostart is off")


@pytest.mark.parametrize("api, asked", [("v5", "GET {url}/services/v5/me"),
                                        ("v3", "GET {url}/services/v3/activities?limit=1")])
def test_a_token_the_tracker_refuses_fails(tmp_path, server, api, asked):
    site = Site(tmp_path, server.url, api=api, token="not-the-token", agent={"autostart": True})
    repo = work_tree_with_hook(tmp_path, site)
    proc = doctor(repo)
    assert proc.returncode == 1
    where = asked.format(url=server.url).split(" ", 1)[1]
    assert failing(proc) == [f"FAIL tracker: the tracker refused the token (403 from {where}) \u2014 fix: put the"
                             f" right API token in {site.token_file} (Tracker: Profile, API token)"]
    assert "not-the-token" not in proc.stdout + proc.stderr


def test_the_v3_check_asks_the_activity_feed_and_passes(tmp_path, server):
    site = Site(tmp_path, server.url, api="v3", agent={"autostart": True})
    proc = doctor(work_tree_with_hook(tmp_path, site))
    assert proc.returncode == 0, proc.stdout
    assert lines(proc)["tracker"] == (f"ok   tracker: GET {server.url}/services/v3/activities?limit=1 answered 200:"
                                      " the tracker is there and takes the token")


def test_a_wrong_url_fails_with_the_404(tmp_path, server):
    site = Site(tmp_path, server.url + "/tracker", api="v5", agent={"autostart": True})
    proc = doctor(work_tree_with_hook(tmp_path, site))
    assert proc.returncode == 1
    assert failing(proc) == [f"FAIL tracker: the endpoint does not exist (404 from {server.url}/tracker/services/v5/me)"
                             f" \u2014 fix: check tracker.url ({server.url}/tracker: the base URL, like"
                             " https://www.pivotaltracker.com) and tracker.api (v5)"]


def test_a_tracker_that_is_down_fails(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    site = Site(tmp_path, url, api="v5", agent={"autostart": True})
    proc = doctor(work_tree_with_hook(tmp_path, site))
    assert proc.returncode == 1
    assert failing(proc) == [f"FAIL tracker: cannot reach the tracker at {url}/services/v5/me (Connection refused)"
                             f" \u2014 fix: check that the tracker at {url} is up and reachable from here (network,"
                             " proxy, tracker.url)"]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    why = tls.can_make_certificates()
    if why:
        pytest.skip(why)
    return tls.self_signed(tmp_path_factory.mktemp("tls"))


def test_a_certificate_nobody_vouches_for_fails_and_tracker_ca_bundle_fixes_it(tmp_path, certificate):
    with DevServer(token=TOKEN, tls=tls.server_context(certificate)) as server:
        site = Site(tmp_path, server.url, api="v5", agent={"autostart": True})
        repo = work_tree_with_hook(tmp_path, site)
        proc = doctor(repo)
        assert proc.returncode == 1
        [line] = failing(proc)
        assert line.startswith(f"FAIL tracker: TLS verification failed for {server.url}/services/v5/me (")
        assert line.endswith("\u2014 fix: fix the server's certificate, or point tracker.ca_bundle at the CA that"
                             " signed it")

        site.data["tracker"]["ca_bundle"] = certificate[0]
        site.write()
        proc = doctor(repo)
        assert proc.returncode == 0, proc.stdout
        assert lines(proc)["tracker"] == (f"ok   tracker: GET {server.url}/services/v5/me answered 200: the tracker is"
                                          " there and takes the token")


def test_github_push_is_checked_with_a_head_of_its_endpoint(tmp_path, server):
    site = Site(tmp_path, server.url, api="github-push", agent={"autostart": True})
    proc = doctor(work_tree_with_hook(tmp_path, site))
    assert proc.returncode == 0, proc.stdout
    assert lines(proc)["tracker"] == (f"ok   tracker: HEAD {server.url}/services/v3/github_commits answered 405 (it"
                                      " takes POSTs only): the tracker is there; the token is checked by the first"
                                      " delivery")


def test_agent_autostart_off_and_no_agent_running_fails(tmp_path, server):
    site = Site(tmp_path, server.url, api="v5")    # autostart: false
    proc = doctor(work_tree_with_hook(tmp_path, site))
    assert proc.returncode == 1
    assert failing(proc) == ["FAIL agent: none runs, and agent.autostart is off: nothing delivers what the hooks"
                             f" record \u2014 fix: run `hookagent run` as {LOGIN} as a service, or set"
                             " agent.autostart: true and install again"]


def test_a_service_agent_running_is_found_by_its_heartbeat(tmp_path, server):
    site = Site(tmp_path, server.url, api="v5")    # autostart: false; `hookagent run` delivers
    repo = work_tree_with_hook(tmp_path, site)
    site.prepared()
    locks = Path(site.data["spool_dir"]) / "locks"
    agent = subprocess.Popen([sys.executable, "-m", "hookagent", "run", "--config", str(site.config_path)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: any(p.name.startswith(f"{agent.pid}-") and p.read_text().count("\n") == 2
                                      for p in locks.iterdir()))   # its lock, with its first beat
        proc = doctor(repo)
        assert proc.returncode == 0, proc.stdout
        assert lines(proc)["agent"] == f"ok   agent: running in this spool (pid {agent.pid})"
    finally:
        agent.terminate()
        agent.wait(timeout=60)


def test_a_config_that_does_not_exist_fails_and_stops_there(repo, site):
    site.config_path.unlink()
    proc = doctor(repo)
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[-1] == (
        f"FAIL config: {site.config_path} does not exist: the hooks record into the default spool, and no agent can"
        f" deliver until it does \u2014 fix: create it (see config.example.yaml), readable by {LOGIN}")


def test_a_held_queue_fails_pointing_at_retry(repo, site):
    spool = site.prepared()
    dest = site.config.tracker.destination
    state = spool.read_state(dest)
    state.update(held="the tracker refused the token (403)")
    spool.write_state(dest, state)
    proc = doctor(repo)
    assert proc.returncode == 1
    assert lines(proc)["queue"].startswith("FAIL queue: held: the tracker refused the token (403) (0 recorded, 0"
                                           " pending, 0 deferred, 0 in flight, 0 dead) \u2014 fix: fix what it says,"
                                           " then hookagent retry --held")


# ---------------------------------------------------------------------- dispatchers
GITEA_DISPATCHER = """#!/bin/sh
# Gitea's post-receive (modules/repository/hooks.go), reproduced: every executable in
# hooks/<its own name>.d/ gets the push's lines.
data=$(cat)
exitcodes=""
hookname=$(basename "$0")
GIT_DIR=${GIT_DIR:-$(dirname "$0")/..}
for hook in "${GIT_DIR}/hooks/${hookname}.d"/*; do
  test -x "${hook}" && test -f "${hook}" || continue
  echo "${data}" | "${hook}"
  exitcodes="${exitcodes} $?"
done
for i in ${exitcodes}; do
  [ "${i}" -eq 0 ] || exit "${i}"
done
"""


def installed_bare(tmp_path: Path, site: Site) -> Path:
    bare = git_bare(tmp_path / "server.git")
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(bare), "--config", str(site.config_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return bare


def test_ours_in_giteas_dispatch_folder_is_found_through_the_dispatcher(tmp_path, site):
    bare = installed_bare(tmp_path, site)
    hooks = bare / "hooks"
    (hooks / "post-receive.d").mkdir()
    (hooks / "post-receive").rename(hooks / "post-receive.d" / "hookagent")
    write_script(hooks / "post-receive", GITEA_DISPATCHER)
    write_script(hooks / "post-receive.d" / "gitea", "#!/bin/sh\ncat >/dev/null\n")
    proc = doctor(bare)
    assert proc.returncode == 0, proc.stdout
    assert lines(proc)["post-receive"] == (f"ok   post-receive: git runs {hooks}/post-receive, a dispatcher, which"
                                           f" runs ours: {hooks}/post-receive.d/hookagent")

    (hooks / "post-receive.d" / "hookagent").chmod(0o644)
    proc = doctor(bare)
    assert proc.returncode == 1
    assert lines(proc)["post-receive"].startswith(f"FAIL post-receive: ours is {hooks}/post-receive.d/hookagent,"
                                                  f" which the dispatcher {hooks}/post-receive skips")


@pytest.mark.parametrize("ours", ["before-run_orig", "now"])
def test_giteas_dispatcher_chained_under_another_name_warns_that_its_folder_no_longer_runs(tmp_path, site, ours):
    """Installs before hookagent-chained/ ran a chained hook under the name .hookagent-orig, so a
    dispatcher finding its folder by `basename $0` ran nothing; ours now runs it under its own name,
    but a platform writing its dispatcher again would drop ours. Either way: install again."""
    bare = installed_bare(tmp_path, site)
    hooks = bare / "hooks"
    if ours == "before-run_orig":
        text = (hooks / "post-receive").read_text()
        (hooks / "post-receive").write_text(text.replace("run_orig()", "chain_orig()"))
    write_script(hooks / "post-receive.hookagent-orig", GITEA_DISPATCHER)
    write_script(hooks / "post-receive.d" / "gitea", "#!/bin/sh\ncat >/dev/null\n")
    proc = doctor(bare)
    assert proc.returncode == 0, proc.stdout
    fix = f" \u2014 fix: hookagent install {bare} (puts the dispatcher back, and ours in {hooks}/post-receive.d/)"
    if ours == "now":
        assert lines(proc)["post-receive"] == (
            f"warn post-receive: git runs ours ({hooks}/post-receive), then {hooks}/post-receive.hookagent-orig, the"
            f" dispatcher of {hooks}/post-receive.d/: a platform that writes its dispatcher again (Gitea's"
            " resynchronize hooks) drops ours" + fix)
        return
    assert lines(proc)["post-receive"] == (
        f"warn post-receive: git runs ours ({hooks}/post-receive), then {hooks}/post-receive.hookagent-orig, a"
        " dispatcher that finds its folder by the name it runs under: it looks in post-receive.hookagent-orig.d/,"
        f" so the hooks in {hooks}/post-receive.d/ no longer run" + fix)


MULTI_HOOK_DRIVER = """#!/bin/sh
# gitolite's multi-hook driver (src/triggers/repo-specific-hooks), reproduced: every executable
# $0.* gets the push's lines.
stdin=$(cat)
for h in $0.*; do
    [ -x "$h" ] || continue
    echo "$stdin" | "$h"
done
"""


def test_gitolites_driver_without_ours_fails_with_where_gitolite_keeps_hooks(tmp_path, site):
    bare = installed_bare(tmp_path, site)
    hooks = bare / "hooks"
    local = tmp_path / "gitolite-home" / "local" / "hooks"
    write_script(tmp_path / "gitolite-home" / ".gitolite" / "hooks" / "common" / "update",
                 "#!/usr/bin/perl\n# gitolite's update hook\n")
    (hooks / "update").symlink_to(tmp_path / "gitolite-home" / ".gitolite" / "hooks" / "common" / "update")
    ours = local / "repo-specific" / "hookagent"
    ours.parent.mkdir(parents=True)
    (hooks / "post-receive").rename(ours)          # what `gitolite setup --hooks-only` leaves: its driver
    write_script(local / "multi-hook-driver", MULTI_HOOK_DRIVER)
    (hooks / "post-receive").symlink_to(local / "multi-hook-driver")
    proc = doctor(bare)
    assert proc.returncode == 1
    assert failing(proc)[0] == (
        f"FAIL post-receive: git runs {hooks}/post-receive, gitolite's multi-hook driver, which runs post-receive.*"
        f" there; none of them is ours \u2014 fix: hookagent install {bare} (it puts ours among gitolite's"
        " repo-specific hooks under LOCAL_CODE, named by `option hook.post-receive.hookagent` in gitolite.conf,"
        " where gitolite keeps it)")

    (hooks / "post-receive.h00-hookagent").symlink_to(ours)   # what the repo-specific trigger links
    proc = doctor(bare)
    assert lines(proc)["post-receive"] == (f"ok   post-receive: git runs {hooks}/post-receive, gitolite's multi-hook"
                                           f" driver, which runs ours: {hooks}/post-receive.h00-hookagent")
    assert proc.returncode == 0, proc.stdout


HUSKY_H = """#!/usr/bin/env sh
# husky 9's .husky/_/h, reproduced: run .husky/<the name this hook runs under>.
n=$(basename "$0")
s=$(dirname "$(dirname "$0")")/$n
[ ! -f "$s" ] && exit 0
sh -e "$s" "$@"
"""


def test_husky_without_our_line_fails_saying_which_file_needs_it(repo):
    husky = repo / ".husky"
    write_script(husky / "_" / "h", HUSKY_H)
    write_script(husky / "_" / "post-commit", '#!/usr/bin/env sh\n. "$(dirname "$0")/h"\n')
    write_script(husky / "post-commit", "echo team hook\n", mode=0o644)
    git(repo, "config", "core.hooksPath", ".husky/_")
    proc = doctor(repo)
    assert proc.returncode == 1
    assert lines(proc)["post-commit"] == (
        f"FAIL post-commit: core.hooksPath is husky's {husky}/_ (core.hooksPath, local scope, file:.git/config): git"
        f" runs {husky}/_/post-commit, which runs {husky}/post-commit, which does not call hookagent: commits are"
        f" not recorded \u2014 fix: run `hookagent install --team-hook`, which adds"
        f" `command -v hookagent >/dev/null 2>&1 && hookagent hook post-commit || true` to {husky}/post-commit"
        " (then commit it)")

    with open(husky / "post-commit", "a") as fh:
        fh.write("hookagent hook post-commit\n")
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    proc = doctor(repo, env=env)
    assert lines(proc)["post-commit"] == (f"ok   post-commit: git runs husky's {husky}/_/post-commit, which runs"
                                          f" {husky}/post-commit, which calls hookagent")


# ---------------------------------------------------------------------- as root, for another user
@pytest.fixture(scope="module")
def shared():
    why = accounts.can_make_accounts()
    if why:
        pytest.skip(why)
    base = accounts.shared_folder("hookagent-doctor-")
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def bea(shared):
    account = accounts.create(shared)
    yield account
    accounts.remove(account)


@pytest.fixture(scope="module")
def open_python(shared) -> Path:
    base = accounts.system_python()
    if base is None:
        pytest.skip("needs a system python3 (3.10 or newer, with venv) that every user can run")
    return accounts.hookagent_venv(shared / "open", base, shared / "packages")


@pytest.mark.parametrize("how", ["the repository's owner", "--user"])
def test_as_root_a_config_the_hooks_user_cannot_read_fails_naming_that_user(shared, bea, open_python, server, how):
    place = Path(tempfile.mkdtemp(dir=shared))
    place.chmod(0o755)
    state = place / "state"
    state.mkdir()
    bea.give(state)
    site = Site(place, server.url, api="v5", spool_dir=str(state / "spool"), agent={"autostart": True})
    bea.give(site.token_file)
    bare = git_bare(place / "central.git")
    bea.give(bare)
    trusting = dict(os.environ, GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0=str(bare))
    proc = subprocess.run([sys.executable, "-m", "hookagent", "install", str(bare), "--config", str(site.config_path),
                           "--python", str(open_python)], capture_output=True, text=True, env=trusting)
    assert proc.returncode == 0, proc.stderr
    user = ["--user", bea.name] if how == "--user" else []
    who = f"{bea.name} (uid {bea.uid})"

    proc = doctor(bare, *user, env=trusting)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lines(proc)["config"] == f"ok   config: {site.config_path} is read by {who}"

    site.config_path.chmod(0o600)      # root's: the hooks, run by bea, cannot read it
    proc = doctor(bare, *user, env=trusting)
    assert proc.returncode == 1
    assert lines(proc)["config"].startswith(f"FAIL config: {who} cannot read the config {site.config_path}"
                                            " (Permission denied); the hooks and the agent read it as")
    assert f"\u2014 fix: chgrp {bea.name} {site.config_path} && chmod g+r {site.config_path}" in lines(proc)["config"]
    shutil.rmtree(place, ignore_errors=True)


def test_a_user_checks_their_own_work_tree_and_only_root_may_name_another(shared, bea, open_python, server):
    place = Path(tempfile.mkdtemp(dir=shared))
    place.chmod(0o755)
    site = Site(place, server.url, api="v5", spool_dir=str(place / "spool"), agent={"autostart": True})
    work = place / "work"
    git(place, "init", "-q", "-b", "main", str(work))
    bea.give(place)
    as_bea = bea.env(XDG_CONFIG_HOME=str(bea.home / ".config"))
    bea.run([open_python, "-m", "hookagent", "install", work, "--config", site.config_path], env=as_bea)

    proc = bea.run([open_python, "-m", "hookagent", "doctor", work], env=as_bea, check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = lines(proc)
    assert list(found) == CHECKS and all(line.startswith("ok   ") for line in found.values()), proc.stdout
    assert found["config"] == f"ok   config: {site.config_path} is read by {bea.name} (uid {bea.uid})"

    proc = bea.run([open_python, "-m", "hookagent", "doctor", work, "--user", "root"], env=as_bea, check=False,
                   timeout=300)
    assert proc.returncode == 2
    assert proc.stderr == (f"hookagent: --user root: only root can check as another user; run doctor as root (or"
                           " with sudo)\n")
    shutil.rmtree(place, ignore_errors=True)


def test_user_must_name_an_account(repo):
    proc = doctor(repo, "--user", "no-such-user-here")
    assert proc.returncode == 2
    assert proc.stderr.startswith("hookagent: no user 'no-such-user-here' on this machine")
