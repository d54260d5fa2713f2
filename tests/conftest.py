"""Test-wide environment: a git identity, no user or system git config, a private cache."""
from __future__ import annotations

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)   # for the `testing` helpers


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    saved = dict(os.environ)
    os.environ.update({
        "GIT_AUTHOR_NAME": "Ada Tester", "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Tester", "GIT_COMMITTER_EMAIL": "ada@example.com",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(home / "gitconfig"),
        "HOOKAGENT_CACHE_DIR": str(home / "cache"),
        "XDG_CONFIG_HOME": str(home / "config"), "XDG_STATE_HOME": str(home / "state"),
    })
    os.environ.pop("HOOKAGENT_CONFIG", None)
    (home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n[protocol \"file\"]\n\tallow = always\n")
    yield
    os.environ.clear()
    os.environ.update(saved)


from testing.redmine import redmine  # noqa: E402,F401  (the session's real Redmine, for the tests that ask)


@pytest.fixture
def server():
    """A DevServer on 127.0.0.1 taking the test sites' token (testing.site.TOKEN), for one test;
    a test file with its own `server` fixture overrides it."""
    from hookagent.devserver import DevServer
    from testing.site import TOKEN
    with DevServer(token=TOKEN) as s:
        yield s
