"""Hook managers that own ``core.hooksPath`` in a folder of the work tree: husky, a committed
``.githooks/``. install writes no machine-local hook there.

husky 9 sets ``core.hooksPath=.husky/_``, a folder it writes again on every ``npm install``
(``npx husky``), whose stubs source ``_/h``, which runs the team's committed ``.husky/NAME``
found by ``basename $0``. A hook of ours there (absolute paths of this machine) would be renamed
away from its dispatcher, and later overwritten, silently. husky 4 to 8 point core.hooksPath at
``.husky`` itself; a team's own ``.githooks/`` is committed as it is. In each case the durable,
portable place is the team's script for post-commit: one line that runs ``hookagent hook
post-commit`` from PATH (each developer's own hookagent and configuration), and does nothing
where hookagent is not installed. install says which line to add and where, or adds it with
``--team-hook``; uninstall ``--team-hook`` removes it. post-commit alone is enough: git runs it
for every commit an amend or a rebase makes, and ``hookagent hook post-commit`` records each.
"""
from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from hookagent.errors import InstallError

MARK = "hookagent hook post-commit"
LINE = f"command -v hookagent >/dev/null 2>&1 && {MARK} || true"
"""What the team's script runs: nothing where hookagent is not on PATH; never a failed hook
(husky runs the script with `sh -e`: the team's lines after it still run)."""

SHELLS = frozenset({"sh", "bash", "dash", "ash", "ksh", "zsh", "busybox"})

if TYPE_CHECKING:
    from hookagent.hookfiles import Target

Say = Callable[[str], None]


@dataclass(frozen=True)
class Managed:
    """A work tree whose hooks folder (core.hooksPath) is a folder of the work tree itself."""

    tool: str           # "husky", or "" for a committed hooks folder of the team's own
    hooks_dir: str      # the folder git runs hooks from
    script: str         # the team's file that holds the line (.husky/post-commit, HOOKS/post-commit)

    @property
    def runs_script_itself(self) -> bool:
        """Whether git executes the script directly (a shebang and the x bit matter), rather than
        husky 9's dispatcher running it with `sh -e`."""
        return os.path.dirname(self.script) == self.hooks_dir

    def why(self) -> str:
        if self.tool == "husky" and self.runs_script_itself:        # husky 4 to 8
            return f"{self.hooks_dir} (core.hooksPath) is husky's folder of the team's committed hooks"
        if self.tool == "husky":
            return (f"{self.hooks_dir} (core.hooksPath) is husky's: it writes it again on every `npm install`"
                    f" and runs the team's committed {self.script} from it")
        return (f"{self.hooks_dir} (core.hooksPath) is inside the work tree, a folder the team commits"
                f" (git runs its {os.path.basename(self.script)} for everyone)")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def of_target(target: Target) -> Managed | None:
    """The manager of an install target's hooks folder: git work trees only."""
    from hookagent.hookfiles import git_dir_of
    if target.kind != "git-worktree" or not _inside(os.path.realpath(target.hooks_dir),
                                                    os.path.realpath(target.path)):
        return None
    return detect(target.path, target.hooks_dir, git_dir_of(target))


def install(target: Target, *, team_hook: bool, config: str | None, say: Say = print) -> bool:
    """install's part: False where the hooks folder is machine-local (install goes on as usual);
    else the refusal with the line to add (InstallError), or, with team_hook, the line added;
    where the team's script has it already, that is said, and all is well."""
    managed = of_target(target)
    if managed is None:
        if team_hook:
            raise InstallError(f"--team-hook: the hooks of {target.path} are in {target.hooks_dir}, not in"
                               " a folder of the work tree the team commits; install without --team-hook")
        return False
    if not team_hook and not has_line(managed):
        raise InstallError(refusal(managed))
    add_line(managed, config=config, say=say)      # or says it is there already
    return True


def has_line(managed: Managed) -> bool:
    """Whether the team's script already runs `hookagent hook post-commit` (a clone of a team
    that added it: install has nothing to write)."""
    text = _read(managed.script)
    return text is not None and MARK in text


def uninstall(target: Target, *, say: Say = print) -> int:
    """uninstall --team-hook: the line taken out of the team's script. Returns 1 when removed."""
    managed = of_target(target)
    if managed is None:
        raise InstallError(f"--team-hook: the hooks of {target.path} are in {target.hooks_dir}, not in a"
                           " folder of the work tree the team commits; uninstall without --team-hook")
    return remove_line(managed, say=say)


def detect(work_tree: str, hooks_dir: str, git_dir: str | None) -> Managed | None:
    """The manager of a work tree's hooks folder, or None when the folder is machine-local (in
    the git dir, or outside the work tree)."""
    top, hooks = os.path.realpath(work_tree), os.path.realpath(hooks_dir)
    if not _inside(hooks, top) or hooks == top:
        return None
    if git_dir and _inside(hooks, os.path.realpath(git_dir)):
        return None
    parent = os.path.dirname(hooks)
    if os.path.basename(hooks) == "_" and (os.path.isfile(os.path.join(hooks, "h"))
                                           or os.path.basename(parent) == ".husky"):
        return Managed("husky", hooks, os.path.join(parent, "post-commit"))              # husky 9
    if os.path.isfile(os.path.join(hooks, "_", "husky.sh")):
        return Managed("husky", hooks, os.path.join(hooks, "post-commit"))               # husky 4-8
    return Managed("", hooks, os.path.join(hooks, "post-commit"))


def refusal(managed: Managed) -> str:
    """One line: why install writes nothing there, and the exact line to add and where (last,
    to be copied whole)."""
    return (f"{managed.why()}, so hookagent writes no machine-local hook there; add this line to"
            f" {managed.script} and commit it, or run `hookagent install --team-hook` to add it (it records"
            f" each commit, amends and rebases too, where hookagent is on PATH, and does nothing"
            f" elsewhere): {LINE}")


def _shell_of(first_line: str) -> str | None:
    """The interpreter a `#!` line names (through env), or None without one."""
    if not first_line.startswith("#!"):
        return None
    words = first_line[2:].split()
    if words and os.path.basename(words[0]) == "env":
        words = [w for w in words[1:] if not w.startswith("-")]
    return os.path.basename(words[0]) if words else ""


def _write(path: str, text: str, mode: int) -> None:
    from hookagent.hookfiles import write_text
    write_text(path, text, mode, f"or add the line by hand: {LINE}")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}; add the line by hand: {LINE}") from None


def add_line(managed: Managed, *, config: str | None, say: Say = print) -> None:
    """Put LINE into the team's script, after its `#!` line (before anything that could end the
    script early); the rest stays byte for byte. A script that is not sh is left alone."""
    path = managed.script
    text = _read(path)
    if text is not None and MARK in text:
        say(f"{path} already runs `{MARK}`; nothing to do")
    else:
        if text is None:
            new = f"#!/bin/sh\n{LINE}\n" if managed.runs_script_itself else f"{LINE}\n"
            mode = 0o755
        else:
            first, sep, rest = text.partition("\n")
            shell = _shell_of(first)
            if shell and shell not in SHELLS:
                raise InstallError(f"{path} is a {shell} script, not sh: add a call to `{MARK}` to it"
                                   " yourself (it never fails and prints at most one line)")
            head = first + sep if shell is not None else ""
            body = rest if shell is not None else text
            if shell is not None and not sep:       # a `#!` line without its newline
                head += "\n"
            new = f"{head}{LINE}\n{body}"
            mode = os.stat(path).st_mode & 0o7777
        _write(path, new, mode)
        say(f"added to {path}: {LINE}")
        say(f"note: commit {path}: every clone then records its commits where hookagent is on PATH")
    if shutil.which("hookagent") is None:
        script = os.path.join(os.path.dirname(sys.executable), "hookagent")
        how = f" (e.g. `ln -s {script} ~/.local/bin/`)" if os.access(script, os.X_OK) else ""
        say(f"note: hookagent is not on PATH here, so the line does nothing on this machine yet; put it there{how}")
    _note_config(config, say)


def _note_config(config: str | None, say: Say) -> None:
    """The line reads each developer's configuration; say so when --config names another."""
    from hookagent import paths
    found = paths.find_config()
    if config and (found is None or os.path.abspath(found) != os.path.abspath(config)):
        say(f"note: the line uses the configuration hookagent finds at commit time ($HOOKAGENT_CONFIG, else"
            f" {' or '.join(paths.default_config_paths())}), not {config}: set HOOKAGENT_CONFIG={config}"
            " in your environment, or move it there")
    elif not config and found is None:
        say(f"note: no configuration yet: write {paths.default_config_paths()[0]} (see config.example.yaml)"
            " or set HOOKAGENT_CONFIG; until then each commit that names a story says so in one line")


def _created(managed: Managed) -> str:
    """What add_line writes into a script that was not there, without the line."""
    return "#!/bin/sh\n" if managed.runs_script_itself else ""


def remove_line(managed: Managed, *, say: Say = print) -> int:
    """Take LINE out of the team's script again (uninstall --team-hook); a script that held
    nothing else (add_line made it) goes. Returns 1 when removed."""
    path = managed.script
    text = _read(path)
    if text is None or f"{LINE}\n" not in text:
        say(f"{path} has no line of hookagent's; nothing to do")
        return 0
    new = text.replace(f"{LINE}\n", "", 1)
    try:
        if new == _created(managed):
            os.unlink(path)
            say(f"removed {path} (hookagent's line was all it held); commit that")
            return 1
    except OSError as exc:
        raise InstallError(f"cannot remove {path}: {exc.strerror}; check the permissions of"
                           f" {os.path.dirname(path)}") from None
    _write(path, new, os.stat(path).st_mode & 0o7777)
    say(f"removed hookagent's line from {path}; commit it")
    return 1
