"""gitolite: a repository gitolite manages gets hookagent's hook where gitolite keeps hooks.

gitolite owns ``REPO.git/hooks``. ``gitolite setup``, and every push of gitolite-admin (its
compile), link ``hooks/post-receive`` to gitolite's multi-hook driver and delete
``hooks/post-receive.*`` in a repository that has repo-specific hooks; ``gitolite setup
--hooks-only`` links LOCAL_CODE's ``hooks/common/*`` over whatever is there. A hook written into
``hooks/`` (and a hook moved aside beside it) is silently gone after the next one of these.

The durable place for one repository's hook is gitolite's own, its repo-specific hooks:

    LOCAL_CODE/hooks/repo-specific/hookagent/REPO/post-receive      (the file we write)
    repo REPO
        option hook.post-receive.hookagent = hookagent/REPO/post-receive   (gitolite.conf)

gitolite links it into ``REPO.git/hooks`` on every compile and setup (and when it creates the
repository), and its driver runs it beside the repository's other repo-specific hooks, each under
its own name: nothing is renamed and we chain nothing. LOCAL_CODE's ``hooks/common`` is not used:
it is every repository's at once (our hook is rendered for one) and one file a site may already
use.

``find`` recognises a gitolite repository by its update hook (gitolite's in every repository it
manages) and asks that repository's gitolite, as its account, for GL_REPO_BASE, LOCAL_CODE and
whether repo-specific hooks are enabled; it refuses, with the lines to add to ``~/.gitolite.rc``,
when they are not. ``install`` writes the hook there; when gitolite.conf names it, it runs
``gitolite setup`` as the account and checks the link is in place, else it says the line to add.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from typing import Callable, Iterable

from hookagent import hookfiles, ownercheck, process
from hookagent.errors import InstallError, ProcessError
from hookagent.ownercheck import Owner

UPDATE_MARK = b"Gitolite::Hooks::Update"
"""In gitolite's update hook, which gitolite links into every repository it manages."""
HOOKS = ("post-receive",)
"""The hooks of ours a gitolite repository takes (gitolite runs pre-receive, post-receive,
post-update and pre-auto-gc from repo-specific hooks; ours for a bare repository is post-receive)."""
FEATURE = "repo-specific-hooks"
RC_LINES = ("LOCAL_CODE => \"$ENV{HOME}/local\",", "'repo-specific-hooks',")

Say = Callable[[str], None]


@dataclass(frozen=True)
class Site:
    """A repository gitolite manages, and where its hooks of ours go."""
    account: Owner          # gitolite's account: owns the repositories, runs their hooks
    program: str            # the gitolite command
    repo_base: str          # GL_REPO_BASE
    local_code: str         # LOCAL_CODE
    repo: str               # the repository's name in gitolite.conf
    git_dir: str

    def code(self, hook: str) -> str:
        """The hook's name in gitolite.conf (a path under LOCAL_CODE/hooks/repo-specific)."""
        return f"hookagent/{self.repo}/{hook}"

    @property
    def folder(self) -> str:
        """Where our hook files for this repository go."""
        return os.path.join(self.local_code, "hooks", "repo-specific", "hookagent", self.repo)

    def option(self, hook: str) -> str:
        return f"option hook.{hook}.hookagent = {self.code(hook)}"


def manages(git_dir: str) -> bool:
    """Whether gitolite manages the repository at git_dir: its update hook is gitolite's."""
    try:
        with open(os.path.join(git_dir, "hooks", "update"), "rb") as fh:
            return UPDATE_MARK in fh.read(4096)
    except OSError:
        return False


def find(target: hookfiles.Target, hooks: Iterable[str]) -> Site | None:
    """The gitolite site of a bare repository gitolite manages, None for any other repository;
    InstallError when ours cannot go where gitolite keeps hooks (saying what to change)."""
    if target.kind != "git-bare" or not manages(target.path):
        return None
    path = target.path
    asked = [h for h in hooks if h not in HOOKS]
    if asked:
        raise InstallError(f"gitolite manages {path}, where hookagent installs {', '.join(HOOKS)} only (asked for"
                           f" {', '.join(asked)}); install again without --hooks")
    account = _account(path)
    program = shutil.which("gitolite") or os.path.join(account.home, "bin", "gitolite")
    if not os.access(program, os.X_OK):
        raise InstallError(f"gitolite manages {path}, but the gitolite command is not on PATH (nor in"
                           f" {account.home}/bin); put it on PATH (Debian: package gitolite3), then install again")
    repo_base = _query(account, program, "GL_REPO_BASE")
    local_code = _query(account, program, "LOCAL_CODE")
    enabled = FEATURE in _query(account, program, "POST_COMPILE").split()
    if not local_code or not enabled:
        missing = " and ".join(f"`{line}`" for line, off in zip(RC_LINES, (not local_code, not enabled)) if off)
        raise InstallError(
            f"gitolite manages {path} and puts back its own hooks there at every `gitolite setup` and admin"
            f" push; hookagent's hook goes in its repo-specific hooks, under LOCAL_CODE, which"
            f" {account.home}/.gitolite.rc does not enable: add {missing} there (the feature in ENABLE;"
            " the default rc has them, commented out), then install again")
    real_base, real_dir = os.path.realpath(repo_base), os.path.realpath(path)
    if not real_dir.startswith(real_base.rstrip("/") + "/") or not real_dir.endswith(".git"):
        raise InstallError(f"gitolite manages {path}, but it is not a NAME.git under its GL_REPO_BASE {repo_base};"
                           " install into the repository there")
    repo = real_dir[len(real_base.rstrip("/")) + 1:-len(".git")]
    return Site(account, program, repo_base, local_code, repo, path)


def target(site: Site) -> hookfiles.Target:
    """The repository, with its hooks going to its folder of repo-specific hooks (install, --print)."""
    return hookfiles.Target("git-bare", site.git_dir, site.folder)


def install(site: Site, hooks: Iterable[str], *, python: str, config: str | None,
            settings: hookfiles.Baked | None = None, say: Say = print) -> str | None:
    """Write our hooks where gitolite keeps this repository's own, and have gitolite link them in
    (`gitolite setup` as its account). Returns what is left to do when gitolite.conf does not
    name them yet (the line to add: the caller refuses with it once the rest is done), else None."""
    hooks = list(hooks)
    made = _makedirs(site.folder, site.account)
    hookfiles.install(target(site), hooks, python=python, config=config, settings=settings, say=say)
    _give(site.account, made + [os.path.join(site.folder, hook) for hook in hooks])
    configured = _options(site)
    missing = [hook for hook in hooks if site.code(hook) not in configured.get(hook, ())]
    if missing:
        lines = "; ".join(f"`{site.option(hook)}`" for hook in missing)
        return (f"gitolite runs the hooks of {site.repo} that gitolite.conf names, and it does not name"
                f" hookagent's yet: add {lines} under `repo {site.repo}` in conf/gitolite.conf of the"
                f" gitolite-admin repository and push it; gitolite then links the hook into {site.git_dir}/hooks")
    code, _out, err = _gitolite(site.account, site.program, "setup")
    if code != 0:
        raise InstallError(f"`gitolite setup` as {site.account.who} failed ({process.error_line(err.encode())}); run it as"
                           f" {site.account.login} to see why, then install again")
    for hook in hooks:
        mine = os.path.join(site.folder, hook)
        hooks_dir = os.path.join(site.git_dir, "hooks")
        linked = [name for name in _names(hooks_dir) if name.startswith(f"{hook}.")
                  and _same(os.path.join(hooks_dir, name), mine)]
        driver = os.path.join(hooks_dir, hook)
        if not linked:
            raise InstallError(f"`gitolite setup` did not link {mine} into {hooks_dir}; check the `{site.option(hook)}`"
                               f" line under `repo {site.repo}` in gitolite.conf, then install again")
        if not _is_driver(driver):
            raise InstallError(f"gitolite's {hook} in {hooks_dir} is not its multi-hook driver (it is"
                               f" {os.path.realpath(driver)}), so repo-specific hooks do not run there; a"
                               f" LOCAL_CODE/hooks/common/{hook} takes their place: move it into repo-specific"
                               " hooks too, then install again")
        say(f"gitolite runs it for {site.repo}: ran `gitolite setup` as {site.account.login}, which linked it"
            f" as {os.path.join(hooks_dir, linked[0])}")
    return None


def uninstall(target: hookfiles.Target, hooks: Iterable[str] | None = None, *, say: Say = print) -> bool:
    """Remove our hooks from where install puts them in a repository gitolite manages. False when
    the repository is not one, or has none of ours there (the caller looks in hooks/ then)."""
    if target.kind != "git-bare" or not manages(target.path):
        return False
    try:
        site = find(target, [h for h in (hooks or HOOKS) if h in HOOKS])
    except InstallError:         # no LOCAL_CODE, no repo-specific hooks: none of ours can be there
        return False
    assert site is not None
    removed = []
    for hook in hooks or HOOKS:
        path = os.path.join(site.folder, hook)
        if hook in HOOKS and os.path.lexists(path) and hookfiles.is_ours(path):
            try:
                os.unlink(path)
            except OSError as exc:
                raise InstallError(f"cannot remove {path}: {exc.strerror}; run uninstall as {site.account.login}"
                                   " (gitolite's account) or as root") from None
            removed.append(hook)
            say(f"removed {hook} from {site.folder}; gitolite's driver now skips its link in"
                f" {site.git_dir}/hooks: remove `{site.option(hook)}` from gitolite.conf too (gitolite warns"
                " about it at every compile until then)")
    for folder in (site.folder, os.path.dirname(site.folder)):
        try:
            os.rmdir(folder)     # only when empty
        except OSError:
            break
    return bool(removed)


# --- the gitolite account and its gitolite ---------------------------------------------------------

def _account(git_dir: str) -> Owner:
    st = os.stat(git_dir)
    try:
        return ownercheck.account(str(st.st_uid))
    except InstallError:
        raise InstallError(f"gitolite manages {git_dir}, but its owner (uid {st.st_uid}) has no account; give the"
                           " repository to gitolite's account, then install again") from None


def _gitolite(account: Owner, program: str, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `gitolite ARGS` run as the account (as gitolite runs: its home)."""
    env = {"HOME": account.home, "USER": account.login, "LOGNAME": account.login,
           "PATH": os.environ.get("PATH") or "/usr/local/bin:/usr/bin:/bin"}
    for var in ("LANG", "LC_ALL"):
        if var in os.environ:
            env[var] = os.environ[var]
    user = None
    if os.geteuid() != account.uid:
        if os.geteuid() != 0:
            raise InstallError(f"gitolite manages this repository as {account.who}; run install as"
                               f" {account.login} (or as root)")
        user = process.Identity(account.uid, account.gid, account.groups)
    try:
        code, out, err = process.run([program, *args], cwd=account.home, env=env, check=False, timeout=300, user=user)
    except ProcessError as exc:
        raise InstallError(f"cannot run gitolite as {account.who}: {exc}") from None
    return code, out.decode("utf-8", "surrogateescape"), err.decode("utf-8", "replace")


def _query(account: Owner, program: str, name: str) -> str:
    """An rc value as `gitolite query-rc` prints it ('' when unset)."""
    code, out, err = _gitolite(account, program, "query-rc", name)
    if code not in (0, 1) or (code == 1 and err.strip()):
        raise InstallError(f"`gitolite query-rc {name}` as {account.who} failed ({process.error_line(err.encode())});"
                           f" run it as {account.login} to see why, then install again")
    return out.strip()


def _options(site: Site) -> dict[str, tuple[str, ...]]:
    """The repo-specific hooks gitolite.conf gives the repository: hook -> names."""
    code, out, _err = _gitolite(site.account, site.program, "git-config", "-ev", "-r", site.repo,
                                r"gitolite-options\.hook\.")
    found: dict[str, tuple[str, ...]] = {}
    for line in out.splitlines() if code == 0 else ():
        parts = line.split("\t")
        if len(parts) == 3:
            hook = parts[1].removeprefix("gitolite-options.hook.").split(".")[0]
            found[hook] = found.get(hook, ()) + tuple(parts[2].split())
    return found


# --- files --------------------------------------------------------------------------------------

def _makedirs(folder: str, account: Owner) -> list[str]:
    """Create folder and its missing parents; the ones made (to be given to the account)."""
    made = []
    path = folder
    while not os.path.isdir(path):
        made.append(path)
        path = os.path.dirname(path)
    for path in reversed(made):
        try:
            os.mkdir(path, 0o755)
        except FileExistsError:
            pass
        except OSError as exc:
            raise InstallError(f"cannot create {path}: {exc.strerror}; run install as {account.login} (gitolite's"
                               " account) or as root") from None
    return made


def _give(account: Owner, paths: list[str]) -> None:
    """Root made them: they are the gitolite account's, as the rest of LOCAL_CODE is."""
    if os.geteuid() != 0 or account.uid == 0:
        return
    for path in paths:
        try:
            os.lchown(path, account.uid, account.gid)
        except OSError as exc:
            raise InstallError(f"cannot give {path} to {account.who}: {exc.strerror}; run chown -R"
                               f" {account.login} {path}") from None


def _names(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _is_driver(driver: str) -> bool:
    """Whether the hook git runs (hooks/HOOK) is gitolite's multi-hook driver, which runs each
    hooks/HOOK.* (the repo-specific hooks gitolite linked in)."""
    try:
        with open(driver, "rb") as fh:
            text = fh.read(4096)
    except OSError:
        return False
    return b'for h in $0.*' in text
