"""Hook files: find what a repository is, render our hook from the template, install and uninstall it.

pre-commit's install side is the model: the hook is a small shell script rendered with
absolute paths; a hook that was already there is kept (in hookagent-chained/) and still runs
after ours under its own name (same argv, same stdin); an id line tells our files from anyone
else's, so install is idempotent and uninstall never deletes a hook that is not ours. Which
place each hook goes to (a platform's dispatch folder, GitLab's custom_hooks, a folder given with
--hooks-dir, a global core.hooksPath) is hookagent.layouts'.

No heavy imports here: git and interpreters run through hookagent.process.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Callable, Iterable

from hookagent import layouts, process
from hookagent.errors import InstallError, ProcessError

ID_PREFIX = "# hookagent-hook-id:"
ID_LINE = f"{ID_PREFIX} 2"
ORIG_SUFFIX = layouts.LEGACY_SUFFIX   # where installs before hookagent-chained/ kept a foreign hook

GIT_HOOKS = ("post-commit", "post-rewrite", "post-merge", "post-receive")
SVN_HOOKS = ("post-commit", "post-revprop-change")
# Hooks that are given data on stdin (git's ref hooks; svn's revprop hooks get the old value).
STDIN_HOOKS = frozenset({"post-receive", "pre-receive", "proc-receive", "pre-push", "post-rewrite",
                         "reference-transaction", "post-revprop-change", "pre-revprop-change"})

# Placeholders for the rendered examples under hooks/ (a test keeps them equal to a fresh render).
EXAMPLE_PYTHON = "/usr/bin/python3"
EXAMPLE_CONFIG = "/etc/hookagent/config.yaml"
EXAMPLE_SVNLOOK = "/usr/bin/svnlook"
EXAMPLE_SPOOL = "/var/spool/hookagent"
EXAMPLES = {  # relative path -> (hook, vcs, repository path shown in the hint)
    "hooks/git/post-commit": ("post-commit", "git", "/srv/git/project"),
    "hooks/git/post-rewrite": ("post-rewrite", "git", "/srv/git/project"),
    "hooks/git/post-merge": ("post-merge", "git", "/srv/git/project"),
    "hooks/git/post-receive": ("post-receive", "git", "/srv/git/project.git"),
    "hooks/svn/post-commit": ("post-commit", "svn", "/srv/svn/project"),
    "hooks/svn/post-revprop-change": ("post-revprop-change", "svn", "/srv/svn/project"),
}

WHAT_PATH_MUST_BE = ("PATH must be a git work tree (or linked worktree), a bare git repository, or an svn"
                     " repository made by `svnadmin create` (the folder holding format, db/ and hooks/)")

Say = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """Where hooks go. kind is "git-worktree", "git-bare", "svn", "hooks-dir" (install --hooks-dir)
    or "git-global" (install --global outside a repository); path is what the user names. shared:
    the hooks folder serves many repositories (the hook is rendered without one)."""

    kind: str
    path: str
    hooks_dir: str
    shared: bool = False

    @property
    def vcs(self) -> str:
        return "svn" if self.kind == "svn" else "git"

    @property
    def default_hooks(self) -> tuple[str, ...]:
        if self.kind == "hooks-dir":
            from hookagent.layouts import hooks_dir_hook
            named = hooks_dir_hook(self.hooks_dir)
            return (named,) if named in GIT_HOOKS else ("post-receive",)
        work_tree = ("post-commit", "post-rewrite", "post-merge")
        return {"git-worktree": work_tree, "git-bare": ("post-receive",), "git-global": work_tree,
                "svn": ("post-commit",)}[self.kind]

    @property
    def supported_hooks(self) -> tuple[str, ...]:
        return SVN_HOOKS if self.vcs == "svn" else GIT_HOOKS


# --- detection ---------------------------------------------------------------------------------

def is_svn_repository(path: str) -> bool:
    return (os.path.isfile(os.path.join(path, "format")) and os.path.isdir(os.path.join(path, "db"))
            and os.path.isdir(os.path.join(path, "hooks")))


def _git_env() -> dict[str, str]:
    """The environment minus variables that would point git at another repository."""
    env = dict(os.environ)
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                "GIT_PREFIX"):
        env.pop(var, None)
    return env


def _git(args: list[str], cwd: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `git ARGS` run in cwd, as text."""
    git = shutil.which("git")
    if git is None:
        raise InstallError("git not found on PATH; install git (or put it on PATH) and try again")
    code, out, err = process.run([git, *args], cwd=cwd, env=_git_env(), check=False)
    return code, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "replace")


def _git_refusal(path: str, err: str) -> str:
    """What to say when git will not work in PATH: not a repository, or git's own reason (a
    repository another user owns is refused as "dubious ownership" until it is trusted with
    safe.directory: that is the user's decision, never bypassed here), with git's fix."""
    reason = process.error_line(err.encode())
    if not reason or "not a git repository" in reason:
        return f"{path} is not a git or svn repository; {WHAT_PATH_MUST_BE}"
    reason = reason.removeprefix("fatal: ").removeprefix("error: ")
    lines = [line.strip() for line in err.splitlines()]
    fix = next((line for line in lines if line.startswith("git config ")), None)
    if fix:
        return f"git refuses {path}: {reason}; if you trust it, run `{fix}`, then install again"
    return f"git refuses {path}: {reason}; run `git rev-parse --git-dir` there to see the whole error"


def detect(path: str) -> Target:
    """Work out what PATH is and where its hooks live, or raise InstallError saying what it must be."""
    path = os.path.abspath(path)
    if not os.path.isdir(path):
        raise InstallError(f"{path} is not a folder; {WHAT_PATH_MUST_BE}")
    if is_svn_repository(path):
        return Target("svn", path, os.path.join(path, "hooks"))
    if os.path.isdir(os.path.join(path, ".svn")):
        raise InstallError(f"{path} is an svn working copy, but svn hooks live in the repository on the"
                           f" server; {WHAT_PATH_MUST_BE}")
    code, probe, err = _git(["rev-parse", "--is-bare-repository", "--is-inside-work-tree"], path)
    if code != 0:
        raise InstallError(_git_refusal(path, err))
    bare, inside_work_tree = probe.split()[:2]
    if bare == "true":
        top = _git(["rev-parse", "--absolute-git-dir"], path)[1].strip() or path
        kind = "git-bare"
    elif inside_work_tree == "true":
        top = _git(["rev-parse", "--show-toplevel"], path)[1].strip() or path
        kind = "git-worktree"
    else:
        raise InstallError(f"{path} is inside a git directory; pass the work tree (the folder that holds"
                           " .git) instead")
    # --git-path honours core.hooksPath (relative ones too) and linked worktrees (shared hooks).
    code, hooks, err = _git(["rev-parse", "--git-path", "hooks"], top)
    if code != 0 or not hooks.strip():
        raise InstallError(f"git could not tell where the hooks of {top} live ({err.strip()});"
                           " check `git rev-parse --git-path hooks` there")
    return Target(kind, top, os.path.normpath(os.path.join(top, hooks.strip())))


def git_dir_of(target: Target) -> str | None:
    """The git dir of a git target (a bare repository's is its path), None for svn or when git
    cannot tell."""
    if target.kind == "git-bare":
        return target.path
    if target.kind != "git-worktree":
        return None
    code, out, _err = _git(["rev-parse", "--absolute-git-dir"], target.path)
    return (out.strip() or None) if code == 0 else None


def choose_hooks(target: Target, spec: str | None) -> list[str]:
    """--hooks NAME[,NAME], checked against what this kind of repository can run; else the default."""
    if not spec:
        return list(target.default_hooks)
    names: list[str] = []
    for name in (n.strip() for n in spec.split(",")):
        if name and name not in names:
            names.append(name)
    bad = [n for n in names if n not in target.supported_hooks]
    if bad or not names:
        raise InstallError(f"--hooks {spec!r}: a {target.vcs} repository takes "
                           f"{' and/or '.join(target.supported_hooks)}; pass a comma-separated list of those")
    if target.kind == "hooks-dir":
        from hookagent.layouts import hooks_dir_hook
        named = hooks_dir_hook(target.hooks_dir)
        if named and names != [named]:
            raise InstallError(f"--hooks {spec!r}: {target.hooks_dir} is the folder of {named}'s hooks; leave"
                               f" --hooks out, or give the folder that holds {named}.d")
    return names


# --- rendering ---------------------------------------------------------------------------------

def template() -> str:
    return resources.files("hookagent").joinpath("resources/hook-tmpl").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Baked:
    """What the sh hook needs from the configuration, read at install: it never parses YAML."""
    spool: str
    key: str
    autostart: bool
    syntax: str = "tracker"   # the destination's grammar: the quick test's pattern (refsyntax.py)


def baked(config: str | None, python: str) -> Baked:
    """The configuration's values for the hook. Loaded here when this interpreter can (PyYAML);
    else by the interpreter the hook will run (`python3 installer.py` from a bare system)."""
    from hookagent import inbox
    try:
        from hookagent import config as config_mod
        if config and not os.path.exists(config):
            # Not written yet (install warns): the defaults until then; the hook says when the
            # configuration, once there, names another spool.
            return Baked(config_mod.Config().spool_dir, inbox.agent_key(config), True)
        cfg = config_mod.load(config)
    except ImportError:
        code = ("import json, sys; from hookagent import config, inbox; c = config.load(sys.argv[1] or None);"
                " print(json.dumps([c.spool_dir, inbox.agent_key(c.path), c.agent.autostart,"
                " getattr(c.tracker, 'syntax', 'tracker')]))")
        try:
            status, out, err = process.run([python, "-I", "-c", code, config or ""], cwd="/", check=False)
            last = (err.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        except ProcessError as exc:   # the interpreter cannot start
            status, out, last = 1, b"", str(exc)
        if status != 0:
            raise InstallError(f"cannot read the configuration with {python}: {last}; fix it, or install"
                               " with an interpreter that has hookagent and PyYAML (--python)") from None
        import json
        try:
            spool, key, autostart, syntax = json.loads(out)
        except ValueError:
            raise InstallError(f"{python} did not answer what the configuration says (it printed"
                               f" {out.strip()[:80]!r}); install with --python naming the"
                               " interpreter that has hookagent") from None
        return Baked(str(spool), str(key), bool(autostart), str(syntax))
    return Baked(cfg.spool_dir, inbox.agent_key(cfg.path), cfg.agent.autostart, cfg.tracker.syntax)


def render(hook: str, *, python: str, config: str | None, repo: str, vcs: str,
           svnlook: str | None = None, settings: Baked | None = None, git_dir: str | None = None) -> str:
    """The hook script, every value quoted for sh."""
    from hookagent import inbox
    settings = settings or Baked(EXAMPLE_SPOOL, inbox.agent_key(config), True)
    values = {
        "PY": python, "CFG": config or "", "HOOK": hook, "VCS": vcs,
        "SVNLOOK": (svnlook or "") if vcs == "svn" else "", "REPO": repo,
        # post-receive runs in the git dir: its processed-refs snapshot is named after that.
        # No repository (a hooks folder many share): the hook works both out where it runs.
        "RKEY": inbox.path_key(git_dir or repo) if repo else "",
        "SPOOL": settings.spool, "KEY": settings.key, "AUTOSTART": "yes" if settings.autostart else "no",
        "HAS_STDIN": "yes" if hook in STDIN_HOOKS else "no",
        "SYNTAX": settings.syntax,
    }
    if not re.fullmatch(r"[a-z][a-z-]*", hook):
        raise InstallError(f"{hook!r} is not a hook name; use names like post-commit")

    def fill(m: re.Match[str]) -> str:
        if m[1] not in values:
            raise InstallError(f"the hook template names an unknown value @{m[1]}@; reinstall hookagent")
        return shlex.quote(values[m[1]])

    text = re.sub(r"@([A-Z_]+)@", fill, template())  # one pass: a value is never substituted again
    if ID_LINE not in text.splitlines()[:3]:
        raise InstallError("the hook template has lost its id line (hookagent/resources/hook-tmpl);"
                           " reinstall hookagent")
    return text


def examples() -> dict[str, str]:
    """The rendered examples shipped under hooks/, keyed by their path in the checkout."""
    return {rel: render(hook, python=EXAMPLE_PYTHON, config=EXAMPLE_CONFIG, repo=repo, vcs=vcs,
                        svnlook=EXAMPLE_SVNLOOK)
            for rel, (hook, vcs, repo) in EXAMPLES.items()}


def write_examples(root: str) -> list[str]:
    """Regenerate hooks/git/* and hooks/svn/* under a checkout; returns the paths written."""
    written = []
    for rel, text in examples().items():
        dest = os.path.join(root, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        _write_hook(dest, text)
        written.append(dest)
    return written


# --- ours or theirs ----------------------------------------------------------------------------

def is_ours(path: str) -> bool:
    """True when the file at path (following a symlink) carries our id line near its top."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return any(line.startswith(ID_PREFIX.encode()) for line in head.splitlines()[:10])


def leads_back(chained: str, hook: str) -> bool:
    """Whether the hook file ``chained``, run after ours at ``hook``, would run ours again: it
    carries our id line (a copy of ours), or it is, or links to, the file at ``hook``."""
    if is_ours(chained) or os.path.realpath(chained) == os.path.realpath(hook):
        return True
    try:
        return os.path.samefile(chained, hook)     # a hard link
    except OSError:
        return False


def _write_hook(path: str, text: str) -> None:
    write_text(path, text, 0o755, "or run as the repository's owner")   # git and svn run only executable hooks


def write_text(path: str, text: str, mode: int, fix: str) -> None:
    """Replace ``path`` with ``text`` (written beside it, given ``mode`` whatever the umask, then
    renamed over it); an InstallError naming ``fix`` when it cannot."""
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.hookagent-tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise InstallError(f"cannot write {path}: {exc.strerror}; check the permissions of"
                           f" {os.path.dirname(path)} ({fix})") from None


def _read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


# --- install / uninstall -----------------------------------------------------------------------

def resolve_python(python: str | None) -> str:
    """The interpreter to bake in: --python (a name is looked up on PATH), else this one. Absolute,
    symlinks kept (a venv's python is a symlink that must stay the venv's)."""
    if not python:
        return os.path.abspath(sys.executable)
    found = python if os.sep in python else shutil.which(python)
    if not found or not os.path.isfile(found) or not os.access(found, os.X_OK):
        raise InstallError(f"--python {python}: not an executable file; give the absolute path of the"
                           " interpreter that has hookagent installed")
    return os.path.abspath(found)


def resolve_config(config: str | None) -> str | None:
    """--config, else HOOKAGENT_CONFIG at install time, else None (the hook then looks up the default)."""
    chosen = config or os.environ.get("HOOKAGENT_CONFIG") or None
    return os.path.abspath(chosen) if chosen else None


@dataclass(frozen=True)
class Planned:
    """One hook to install: where it goes and the script."""
    place: layouts.Place
    text: str


def plan(target: Target, hooks: Iterable[str], *, python: str, config: str | None, svnlook: str | None = None,
         settings: Baked | None = None) -> list[Planned]:
    """Where each hook goes (hookagent.layouts) and what is written there; nothing is touched."""
    git_dir = git_dir_of(target) if target.kind == "git-worktree" and not target.shared else None
    repo = "" if target.shared else target.path
    return [Planned(layouts.place(target, hook),
                    render(hook, python=python, config=config, repo=repo, vcs=target.vcs, svnlook=svnlook,
                           settings=settings, git_dir=git_dir))
            for hook in hooks]


def where_said(item: Planned) -> str:
    """Where a planned hook goes, in words (install --print)."""
    p = item.place
    if p.layout == "plain":
        theirs = layouts.foreign_hook(p.folder, p.hook)
        kept = f"; the hook there now would run after it, from {layouts.CHAINED_DIR}/{p.hook}" if theirs else ""
        return f"{p.hook} would be written to {p.path}{kept}"
    return f"{p.hook} would be written to {p.path} ({p.why})"


def install(target: Target, hooks: Iterable[str], *, python: str, config: str | None,
            svnlook: str | None = None, settings: Baked | None = None, say: Say = print) -> None:
    """Install each hook where its layout says; one line per action through `say`."""
    if target.kind != "hooks-dir" or os.path.isdir(target.hooks_dir):
        try:
            os.makedirs(target.hooks_dir, exist_ok=True)
        except OSError as exc:
            raise InstallError(f"cannot create the hooks folder {target.hooks_dir}: {exc.strerror}; create it (or"
                               " fix core.hooksPath), then install again") from None
    for item in plan(target, hooks, python=python, config=config, svnlook=svnlook, settings=settings):
        place = item.place
        if place.layout == "plain":
            _install_plain(place.folder, place.hook, item.text, say)
            if target.kind == "hooks-dir":
                say(f"note: {place.path} runs where that file itself is run (a core.hooksPath, gitolite's"
                    f" LOCAL_CODE hooks); GitLab's custom_hooks_dir runs only {place.hook}.d/*: for it, give"
                    f" --hooks-dir {os.path.join(place.folder, place.hook + '.d')}")
        else:
            _install_in_folder(place, item.text, say)
        for other in layouts.candidates(target, place.hook):     # ours runs from one place only
            if other != place.path and os.path.lexists(other) and is_ours(other):
                if other == os.path.join(target.hooks_dir, place.hook):
                    _uninstall_plain(target.hooks_dir, place.hook, explicit=True, say=say,
                                     why=f"it runs from {place.path} now")
                else:
                    _unlink(other)
                    say(f"removed {place.hook} from {os.path.dirname(other)}: it runs from {place.path} now")


def _up_to_date(path: str, text: str) -> bool:
    return (os.path.lexists(path) and not os.path.islink(path) and _read_bytes(path) == text.encode()
            and os.access(path, os.X_OK))


def _install_in_folder(place: layouts.Place, text: str, say: Say) -> None:
    """Ours as a file of a folder someone else runs (a dispatch folder, GitLab's custom_hooks)."""
    path, folder = place.path, place.folder
    if os.path.lexists(path) and not is_ours(path):
        raise InstallError(f"{path} is not hookagent's; hookagent's {place.hook} goes there ({place.why}):"
                           " move that file away, then install again")
    if _up_to_date(path, text):
        say(f"{place.hook} in {folder} is already installed and up to date (as {layouts.OUR_NAME})")
        return
    verb = "updated" if os.path.lexists(path) else "installed"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise InstallError(f"cannot create {folder}: {exc.strerror}; check the permissions of"
                           f" {os.path.dirname(folder)} (or run as the repository's owner)") from None
    _write_hook(path, text)
    say(f"{verb} {place.hook} in {folder} as {layouts.OUR_NAME} ({place.why}; the other files there are left"
        " as they are)")


def _install_plain(where: str, hook: str, text: str, say: Say) -> None:
    """Ours as where/HOOK; a foreign hook there is kept in hookagent-chained/ and still runs."""
    path = os.path.join(where, hook)
    chained, legacy = layouts.chained_path(where, hook), layouts.legacy_path(where, hook)
    shown = f"{layouts.CHAINED_DIR}/{hook}"
    move_legacy = False
    note = ""
    if os.path.lexists(path) and not is_ours(path):
        kept = [p for p in (chained, legacy) if os.path.lexists(p)]
        if kept:
            raise InstallError(f"{path} is not hookagent's and {kept[0]} already exists; move one of them out"
                               " of the way (or merge them into one), then install again")
        _keep(path, chained)
        note = f" (kept your existing hook as {shown}; it still runs after ours, under its own name)"
    elif os.path.lexists(legacy):
        if os.path.lexists(chained):
            raise InstallError(f"{legacy} and {chained} both exist; keep the one that is your hook from before"
                               " hookagent (move the other away), then install again")
        _refuse_leading_back(legacy, path, hook)
        move_legacy = True      # after ours is written: this version's hook runs either
        note = f" (moved your {hook}{layouts.LEGACY_SUFFIX} to {shown}; it still runs after ours, under its own name)"
    elif os.path.lexists(chained):
        _refuse_leading_back(chained, path, hook)
        note = f" (your {shown} still runs after it)"
    if not move_legacy and _up_to_date(path, text):
        say(f"{hook} in {where} is already installed and up to date{note}")
        return
    verb = "updated" if os.path.lexists(path) else "installed"
    _write_hook(path, text)
    if move_legacy:
        _keep(legacy, chained)
    say(f"{verb} {hook} in {where}{note}")


def _refuse_leading_back(kept: str, path: str, hook: str) -> None:
    """A kept hook that ours would chain (in hookagent-chained/, or one moved there now) must not
    be ours or link to ours: chained after ours, it would run ours again."""
    if leads_back(kept, path):
        raise InstallError(f"{kept} is hookagent's own hook (or links to {hook}): chained after ours, it"
                           " would run ours again; remove it, then install again")


def _keep(src: str, dest: str) -> None:
    """Move a foreign hook one folder down into hookagent-chained/: the bytes, the mode bits, a
    symlink as a symlink (a relative one made to point where it pointed)."""
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if os.path.islink(src):
            target = os.readlink(src)
            _relink(target if os.path.isabs(target) else os.path.join(os.pardir, target), dest)
            os.unlink(src)
        else:
            os.rename(src, dest)
    except OSError as exc:
        raise InstallError(f"cannot move {src} to {dest}: {exc.strerror}; check the permissions of"
                           f" {os.path.dirname(src)}") from None


def _restore(src: str, dest: str) -> None:
    """Put a kept hook back in one step (never a moment without a hook); a symlink moved down by
    _keep points as it did before."""
    if os.path.islink(src) and os.path.dirname(os.path.dirname(src)) == os.path.dirname(dest):
        target = os.readlink(src)
        prefix = os.pardir + os.sep
        _relink(target[len(prefix):] if target.startswith(prefix) else target, dest)
        os.unlink(src)
    else:
        os.replace(src, dest)
    chained = os.path.dirname(src)
    if os.path.basename(chained) == layouts.CHAINED_DIR:
        try:
            os.rmdir(chained)    # only when empty
        except OSError:
            pass


def _relink(target: str, dest: str) -> None:
    tmp = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.hookagent-tmp-{os.getpid()}")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, dest)
    except OSError:
        os.unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise InstallError(f"cannot remove {path}: {exc.strerror}; check the permissions of"
                           f" {os.path.dirname(path)}") from None


def _uninstall_plain(where: str, hook: str, *, explicit: bool, say: Say, why: str = "") -> bool | None:
    """Remove ours from where/HOOK and put back the hook it chained. True: done; False: a foreign
    hook is there (said so when asked); None: nothing there."""
    path = os.path.join(where, hook)
    kept = next((p for p in (layouts.chained_path(where, hook), layouts.legacy_path(where, hook))
                 if os.path.lexists(p)), None)
    shown = os.path.relpath(kept, where) if kept else ""
    have_path = os.path.lexists(path)
    if have_path and not is_ours(path):
        if explicit or kept:
            extra = f"; {shown} is also there, sort them out by hand" if kept else ""
            say(f"{hook} in {where} is not hookagent's; left as it is{extra}")
        return False
    why = f": {why}" if why else ""
    try:
        if have_path and kept:
            _restore(kept, path)
            say(f"removed {hook} from {where}{why} (put back your hook from {shown})")
        elif have_path:
            os.unlink(path)
            say(f"removed {hook} from {where}{why}")
        elif kept:
            _restore(kept, path)
            say(f"hookagent's {hook} was already gone from {where}; put back your hook from {shown}")
        else:
            return None
    except OSError as exc:
        raise InstallError(f"cannot change {path}: {exc.strerror}; check the permissions of {where}") from None
    return True


def uninstall(target: Target, hooks: Iterable[str] | None = None, *, say: Say = print) -> int:
    """Remove our hooks from every place install may have put them (a plain hook's chained one
    goes back). Returns how many were removed.

    hooks=None checks every hook we know for this kind of repository and reports only what it finds.
    """
    where = target.hooks_dir
    explicit = hooks is not None
    found = 0
    for hook in (hooks if explicit else target.supported_hooks):
        plain = os.path.join(where, hook)
        here = 0
        for path in layouts.candidates(target, hook):
            if path != plain and os.path.lexists(path) and is_ours(path):
                _unlink(path)
                say(f"removed {hook} from {os.path.dirname(path)}")
                here += 1
        done = _uninstall_plain(where, hook, explicit=explicit and not here, say=say)
        here += bool(done)
        if not here and done is None and explicit:
            say(f"hookagent's {hook} is not installed in {where}; nothing to do")
        found += here
    if not explicit and not found:
        say(f"no hookagent hooks are installed in {where}; nothing to do")
    return found


def find_python_with_hookagent() -> str | None:
    """An interpreter that can import hookagent, when the one running install cannot (e.g.
    `python3 installer.py` from a checkout): the checkout's .venv, then the one behind
    `hookagent` on PATH."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = [os.path.join(here, ".venv", "bin", "python")]
    script = shutil.which("hookagent")
    if script:
        try:
            with open(script, "rb") as fh:
                first = fh.readline().decode("utf-8", "replace")
            if first.startswith("#!"):
                candidates.append(first[2:].strip().split()[0])
        except OSError:
            pass
    for python in candidates:
        if os.path.isfile(python) and os.access(python, os.X_OK) and can_import_hookagent(python):
            return os.path.abspath(python)
    return None


def can_import_hookagent(python: str) -> bool:
    """Whether the interpreter finds hookagent in isolated mode (as the hook runs it)."""
    try:
        return process.run([python, "-I", "-c", "import hookagent"], cwd="/", check=False, timeout=60).returncode == 0
    except ProcessError:   # cannot start, or hangs
        return False
