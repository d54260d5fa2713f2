"""Team hook tools for tests, the real ones: husky 9 from the npm registry and pre-commit from
PyPI (setup.cfg's test extra).

husky is installed once per test session into an npm project of its own (``npm install`` takes
it from npm's cache, which ``scripts/setup --test`` fills, else from the registry); each
repository links that project's node_modules and runs the real ``npx husky``. Where npm is
missing or husky cannot be fetched, :class:`Unavailable` says why (the tests skip on it).

pre-commit installs a hook repository at a commit: :func:`committed_checkout` gives this
checkout as one, committing uncommitted changes in a throwaway clone as ``pre-commit try-repo``
does, so the tests run the manifest and code as they are in the work tree.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from testing.repos import git, git_out, run

ROOT = Path(__file__).resolve().parent.parent
HUSKY = "husky@9"


class Unavailable(Exception):
    """A tool the test needs cannot be had here; the message says why and what to do."""


def install_husky(folder: Path) -> Path:
    """An npm project in folder with husky installed; returns its node_modules."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise Unavailable("node and npm are not installed (scripts/setup --test installs them)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"name": "husky-for-tests", "version": "1.0.0", "private": true}\n')
    proc = run([npm, "install", "--save-dev", "--no-audit", "--no-fund", "--prefer-offline", HUSKY],
               cwd=folder, check=False)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise Unavailable(f"npm could not install {HUSKY}: {err[-1] if err else proc.returncode}"
                          " (scripts/setup --test puts it in npm's cache)")
    return folder / "node_modules"


def npx_husky(repo: Path, *args: str) -> None:
    """The real `npx husky [ARGS]` in repo (what every `npm install` runs through `prepare`)."""
    run(["npx", "--no-install", "husky", *args], cwd=repo)


def husky_work_tree(path: Path, node_modules: Path) -> Path:
    """A git work tree with one commit and husky set up by `npx husky init`: core.hooksPath is
    .husky/_; init's sample .husky/pre-commit (`npm test`, which fails here) is removed."""
    run(["git", "init", "-q", "-b", "main", str(path)])
    (path / "package.json").write_text('{"name": "team-project", "version": "1.0.0", "private": true}\n')
    (path / "node_modules").symlink_to(node_modules)
    (path / ".gitignore").write_text("node_modules\n")
    npx_husky(path, "init")
    (path / ".husky" / "pre-commit").unlink()
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "husky init")
    assert git_out(path, "config", "core.hooksPath") == ".husky/_"
    return path


def path_with_hookagent(folder: Path) -> str:
    """A PATH whose `hookagent` is this interpreter's (its console script, as a developer's
    would be; else a wrapper running `python -m hookagent`), then the rest."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "hookagent"
    console = Path(sys.executable).parent / "hookagent"
    if os.path.lexists(script):
        pass
    elif console.is_file() and os.access(console, os.X_OK):
        script.symlink_to(console)
    else:
        script.write_text(f'#!/bin/sh\nexec {sys.executable} -m hookagent "$@"\n')
        script.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"


def committed_checkout(scratch: Path) -> tuple[str, str]:
    """(repository, commit) holding this checkout as it is now, for pre-commit: the checkout at
    HEAD when nothing is uncommitted, else a clone in scratch with the staged and the changed
    tracked files committed (what `pre-commit try-repo` does)."""
    head = git_out(ROOT, "rev-parse", "HEAD")
    if git(ROOT, "diff", "--quiet", "HEAD", check=False).returncode == 0:
        return str(ROOT), head
    shadow = scratch / "hookagent-shadow"
    run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(shadow)])
    git(shadow, "checkout", "-q", head, "-b", "_tmp")
    env = dict(os.environ, GIT_INDEX_FILE=git_out(shadow, "rev-parse", "--path-format=absolute", "--git-path", "index"),
                GIT_OBJECT_DIRECTORY=git_out(shadow, "rev-parse", "--path-format=absolute", "--git-path", "objects"))
    staged = git_out(ROOT, "diff", "--cached", "--name-only", "-z").split("\0")
    if any(staged):
        run(["git", "add", "--", *[f for f in staged if f]], cwd=ROOT, env=env)
    run(["git", "add", "-u"], cwd=ROOT, env=env)
    git(shadow, "commit", "-q", "--no-verify", "-m", "uncommitted changes")
    return str(shadow), git_out(shadow, "rev-parse", "HEAD")
