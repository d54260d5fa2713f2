"""Which hook files git (or svn) really runs for a repository, and whether ours is among them:
directly, or through a dispatcher (a ``NAME.d/`` folder: Gitea, Forgejo; GitLab's
``custom_hooks/``; gitolite's multi-hook driver, which runs ``NAME.*``; husky 9's ``.husky/_``);
and whether the hook ours chains (``hookagent-chained/NAME``, or ``NAME.hookagent-orig`` from installs
before it) leads back to ours."""
from __future__ import annotations

import glob
import os
import re
import shlex
from dataclasses import dataclass

from hookagent import hookfiles, layouts, process
from hookagent.doctor.base import Result, Who, cannot_run, fail, ok, warn
from hookagent.hookfiles import ORIG_SUFFIX, Target, is_ours
from hookagent.hookmanagers import LINE


def hook_values(path: str) -> dict[str, str]:
    """The values rendered into our hook (PY, CFG, SPOOL, KEY, AUTOSTART, REPO...: see
    resources/hook-tmpl), read from its ``# --- rendered at install ---`` block."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read(64 * 1024)
    except OSError:
        return {}
    values: dict[str, str] = {}
    inside = False
    for line in text.splitlines():
        if line.startswith("# --- rendered at install"):
            inside = True
        elif line.startswith("# --- end of rendered values"):
            break
        elif inside:
            m = re.fullmatch(r"([A-Z_]+)=(.*)", line)
            if m:
                try:
                    words = shlex.split(m[2])
                except ValueError:
                    continue
                values[m[1]] = words[0] if words else ""
    return values


# ---------------------------------------------------------------------- where git runs hooks
@dataclass(frozen=True)
class Place:
    """Where git runs this repository's hooks, where it would without core.hooksPath, and what set it."""
    hooks_dir: str
    default_dir: str
    origin: str | None = None    # "core.hooksPath, local scope, file:.git/config"
    vcs: str = "git"             # who runs them

    def said(self) -> str:
        return f" ({self.origin})" if self.origin else ""


def place_of(target: Target) -> Place:
    if target.vcs != "git":
        return Place(target.hooks_dir, target.hooks_dir, vcs="svn")
    from hookagent.vcs.git import git_dirs
    dirs = git_dirs(target.path)
    default = os.path.join(dirs[1], "hooks") if dirs else target.hooks_dir
    origin = None
    try:
        code, out, _err = process.run(["git", "-C", target.path, "config", "--show-origin", "--show-scope",
                                       "--get", "core.hooksPath"], env=hookfiles._git_env(), check=False, timeout=60)
    except Exception:
        code, out = 1, b""
    if code == 0 and out.strip():
        scope, where, _value = (out.decode("utf-8", "replace").rstrip("\n").split("\t") + ["", "", ""])[:3]
        origin = f"core.hooksPath, {scope} scope, {where}"
    return Place(target.hooks_dir, os.path.normpath(default), origin)


def hook_names(target: Target) -> list[tuple[str, bool]]:
    """The hooks to look at, each with whether delivery needs it."""
    if target.kind == "git-worktree":
        return [("post-commit", True), ("post-rewrite", False), ("post-merge", False)]
    if target.kind == "git-bare":
        return [("post-receive", True)]
    return [("post-commit", True), ("post-revprop-change", False)]


OPTIONAL = {"post-rewrite": "not installed; post-commit records the commits a rebase makes, one by one",
            "post-merge": "not installed; merge commits made here by git merge or git pull are not recorded",
            "post-revprop-change": "not installed; edited log messages are not sent"}


def _text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(64 * 1024)
    except OSError:
        return ""


def _leads_back(ours: str, orig: str) -> str | None:
    """How ``orig`` (the hook ours runs after itself) is ours again, or None."""
    try:
        if os.path.samefile(ours, orig):
            return f"the same file as {os.path.basename(ours)}" + (
                f" (a symlink to {os.readlink(orig)})" if os.path.islink(orig) else "")
    except OSError:
        return None
    if is_ours(orig):
        return "a hook of ours too" + (f" (a symlink to {os.readlink(orig)})" if os.path.islink(orig) else "")
    return None


def _basename_dispatcher(path: str) -> bool:
    """A dispatcher that finds its folder by the name it was run under (Gitea's, husky's `h`)."""
    text = _text(path)
    return "basename" in text and "$0" in text


def _gitolite(target: Target, hooks_dir: str) -> bool:
    """A repository gitolite manages: its gl-conf, or an update hook of gitolite's."""
    if target.kind != "git-bare":
        return False
    if os.path.exists(os.path.join(target.path, "gl-conf")):
        return True
    update = os.path.join(hooks_dir, "update")
    return "/.gitolite/hooks/" in os.path.realpath(update) or "gitolite" in _text(update).lower()


def _multi_hook_driver(path: str) -> bool:
    """gitolite's repo-specific-hooks driver: runs every ``$0.*`` it finds."""
    return os.path.basename(os.path.realpath(path)) == "multi-hook-driver" or "for h in $0.*" in _text(path)


def check_hook(target: Target, place: Place, name: str, who: Who, required: bool) -> tuple[Result, str | None]:
    """The hook git runs for ``name``, and the file of ours it reaches (for its baked values)."""
    path = os.path.join(place.hooks_dir, name)
    husky = _husky(place.hooks_dir)
    if husky:
        return _through_husky(husky, place, name, who, required)
    gitlab = _gitlab(target, name, who)
    if gitlab is not None:
        return gitlab
    if not os.path.lexists(path):
        return _missing(target, place, name, required), None
    if not os.path.exists(path):
        return fail(name, f"{path} is a symlink to {os.readlink(path)}, which does not exist: {place.vcs} runs nothing",
                    f"rm {path}, then hookagent install {target.path}"), None
    why = cannot_run(path, who)
    if is_ours(path):
        if why:
            return fail(name, f"{place.vcs} skips {path}{place.said()}: {why}", f"chmod +x {path}"), path
        return _ours_runs(target, place, name, path, who), path
    if why:
        return fail(name, f"{place.vcs} skips {path}{place.said()} ({why}), and it is not hookagent's anyway",
                    f"hookagent install {target.path} (it keeps that hook and runs it after ours)"), None
    for found in (_in_folder(place, path, name, who), _through_driver(target, path, name, who)):
        if found is not None:
            return found
    if _gitolite(target, place.hooks_dir):
        return fail(name, f"git runs {path} in this repository gitolite manages, and it runs nothing of ours",
                    _GITOLITE_FIX.format(name=name, path=target.path)), None
    elsewhere = os.path.join(place.default_dir, name)
    also = (f"; ours is in {elsewhere}, which git does not run" if place.hooks_dir != place.default_dir
            and is_ours(elsewhere) else "")
    return fail(name, f"{place.vcs} runs {path}{place.said()}, which is not hookagent's and runs nothing of ours{also}",
                f"hookagent install {target.path} (it keeps that hook and runs it after ours)"), None


_GITOLITE_FIX = ("hookagent install {path} (it puts ours among gitolite's repo-specific hooks under LOCAL_CODE,"
                 " named by `option hook.{name}.hookagent` in gitolite.conf, where gitolite keeps it)")


def _missing(target: Target, place: Place, name: str, required: bool) -> Result:
    path = os.path.join(place.hooks_dir, name)
    elsewhere = os.path.join(place.default_dir, name)
    if place.hooks_dir != place.default_dir and is_ours(elsewhere):
        return fail(name, f"git runs hooks from {place.hooks_dir}{place.said()} and there is no {name} there;"
                          f" ours is in {elsewhere}, which git does not run",
                    f"hookagent install {target.path} (to put ours where git looks), or remove core.hooksPath"
                    f" from {place.origin.rsplit(', ', 1)[-1] if place.origin else 'the git config'}")
    if _gitolite(target, place.hooks_dir):
        return fail(name, f"gitolite manages this repository and there is no {path}", _GITOLITE_FIX.format(name=name, path=target.path))
    if not required:
        return ok(name, OPTIONAL.get(name, "not installed"))
    return fail(name, f"{place.vcs} would run {path}{place.said()}, and there is none: nothing is recorded",
                f"hookagent install {target.path}")


def _ours_runs(target: Target, place: Place, name: str, path: str, who: Who) -> Result:
    orig = layouts.chained_path(os.path.dirname(path), name)
    if not os.path.lexists(orig):
        orig = path + ORIG_SUFFIX
    chained = ""
    if os.path.lexists(orig):
        loop = _leads_back(path, orig)
        if loop:
            return fail(name, f"{orig}, the hook ours runs after itself, is {loop}: the hook would run itself"
                              " without end (a commit or push that never ends)",
                        f"rm {orig} (if it held another hook, put that hook back there)")
        why = cannot_run(orig, who) if os.path.exists(orig) else "it is a broken symlink"
        if why:
            return warn(name, f"{place.vcs} runs ours ({path}), but not the hook kept beside it: {orig} ({why})",
                        f"chmod +x {orig}, or remove it if it is not wanted")
        if _basename_dispatcher(orig) and os.path.isdir(path + ".d"):
            fix = f"hookagent install {target.path} (puts the dispatcher back, and ours in {path}.d/)"
            if "run_orig()" in _text(path):     # ours runs it under its own name: its folder still runs
                return warn(name, f"{place.vcs} runs ours ({path}), then {orig}, the dispatcher of {path}.d/: a"
                                  f" platform that writes its dispatcher again (Gitea's resynchronize hooks) drops ours",
                            fix)
            return warn(name, f"{place.vcs} runs ours ({path}), then {orig}, a dispatcher that finds its folder by the"
                              f" name it runs under: it looks in {os.path.basename(orig)}.d/, so the hooks in"
                              f" {path}.d/ no longer run", fix)
        chained = f", then {os.path.basename(orig)}"
    if _gitolite(target, place.hooks_dir) and not os.path.islink(path):
        return warn(name, f"git runs ours ({path}), but gitolite replaces this repository's hooks (gitolite setup"
                          " --hooks-only)", _GITOLITE_FIX.format(name=name, path=target.path))
    via = f" (through {os.path.realpath(path)})" if os.path.islink(path) else ""
    return ok(name, f"{place.vcs} runs {path}{place.said()}: ours{via}{chained}")


def _in_folder(place: Place, path: str, name: str, who: Who) -> tuple[Result, str] | None:
    """Ours in ``NAME.d/``, which a dispatcher at NAME runs (Gitea, Forgejo)."""
    folder = path + ".d"
    for entry in sorted(glob.glob(os.path.join(glob.escape(folder), "*"))):
        if not is_ours(entry):
            continue
        why = cannot_run(entry, who)
        if why:
            return fail(name, f"ours is {entry}, which the dispatcher {path} skips: {why}", f"chmod +x {entry}"), entry
        if f"{name}.d" not in _text(path) and "${hookname}.d" not in _text(path) and ".d/" not in _text(path):
            return warn(name, f"ours is {entry}, but {path} does not look like a dispatcher that runs {folder}/",
                        f"check that {path} runs the files in {folder}/"), entry
        return ok(name, f"{place.vcs} runs {path}, a dispatcher, which runs ours: {entry}"), entry
    return None


def _through_driver(target: Target, path: str, name: str, who: Who) -> tuple[Result, str | None] | None:
    """gitolite's multi-hook driver at NAME, which runs every ``NAME.*``."""
    if not _multi_hook_driver(path):
        return None
    for entry in sorted(glob.glob(glob.escape(path) + ".*")):
        if is_ours(entry):
            why = cannot_run(entry, who)
            if why:
                return fail(name, f"ours is {entry}, which gitolite's driver skips: {why}", f"chmod +x {entry}"), entry
            return ok(name, f"git runs {path}, gitolite's multi-hook driver, which runs ours: {entry}"), entry
    return fail(name, f"git runs {path}, gitolite's multi-hook driver, which runs {name}.* there; none of them is ours",
                _GITOLITE_FIX.format(name=name, path=target.path)), None


def _gitlab(target: Target, name: str, who: Who) -> tuple[Result, str | None] | None:
    """GitLab's per-repository server hooks: Gitaly runs custom_hooks/NAME and custom_hooks/NAME.d/*,
    never hooks/NAME."""
    if target.kind != "git-bare":
        return None
    folder = os.path.join(target.path, "custom_hooks")
    if not os.path.isdir(folder):
        return None
    single = os.path.join(folder, name)
    for entry in [single, *sorted(glob.glob(os.path.join(glob.escape(single + ".d"), "*")))]:
        if is_ours(entry):
            why = cannot_run(entry, who)
            if why:
                return fail(name, f"ours is {entry}, which GitLab skips: {why}", f"chmod +x {entry}"), entry
            return ok(name, f"GitLab runs {entry}: ours"), entry
    return fail(name, f"this is a GitLab repository (it has {folder}/): GitLab runs {single}.d/*, and none of them"
                      " is ours", f"put ours in {single}.d/ (executable)"), None


def _husky(hooks_dir: str) -> str | None:
    """The .husky folder when core.hooksPath is husky 9's ``.husky/_``."""
    if os.path.basename(hooks_dir) == "_" and os.path.basename(os.path.dirname(hooks_dir)) == ".husky":
        return os.path.dirname(hooks_dir)
    return None


def _through_husky(husky: str, place: Place, name: str, who: Who, required: bool) -> tuple[Result, str | None]:
    """husky 9: git runs .husky/_/NAME, whose `h` runs .husky/NAME (found by `basename $0`)."""
    stub, script = os.path.join(place.hooks_dir, name), os.path.join(husky, name)
    if not os.path.lexists(stub) and (required or os.path.exists(script)):
        return fail(name, f"core.hooksPath is husky's {place.hooks_dir}{place.said()}, and there is no {stub}: git"
                          f" runs nothing for {name}", "run `npx husky` (it writes its hooks there)"), None
    if is_ours(stub):
        return warn(name, f"ours is {stub}: husky rewrites .husky/_ (`npx husky`, on every npm install), and"
                          f" while ours is there the team's {script} does not run",
                    f"hookagent uninstall, then `hookagent install --team-hook` (it adds `{LINE}` to"
                    f" {husky}/post-commit, which the team commits)"), stub
    if os.path.isfile(script) and (is_ours(script) or re.search(r"\bhookagent\b", _text(script))):
        if who.mine and not is_ours(script) and not _on_path("hookagent"):
            return warn(name, f"git runs husky's {stub}, which runs {script}, which calls hookagent; but"
                              " `hookagent` is not on PATH here", "put hookagent's bin folder on PATH"), None
        return ok(name, f"git runs husky's {stub}, which runs {script}, which calls hookagent"), None
    if not required and not os.path.exists(script):
        return ok(name, OPTIONAL.get(name, "not installed")), None
    what = "which does not call hookagent" if os.path.exists(script) else "which does not exist"
    return fail(name, f"core.hooksPath is husky's {place.hooks_dir}{place.said()}: git runs {stub}, which runs"
                      f" {script}, {what}: commits are not recorded",
                f"run `hookagent install --team-hook`, which adds `{LINE}` to {husky}/post-commit"
                " (then commit it)"), None


def _on_path(program: str) -> bool:
    import shutil
    return shutil.which(program) is not None
