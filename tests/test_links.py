"""Commit links: templates first, else derived from the repository's remote where unambiguous."""
from __future__ import annotations

import pytest

from hookagent import links
from hookagent.devserver import DevServer
from testing.site import TOKEN, Site, commit_file, git
from tests.test_hook_post_commit import make_repo

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("remote,expected", [
    ("git@github.com:octo/hello.git", "https://github.com/octo/hello/commit/{sha}"),
    ("https://github.com/octo/hello", "https://github.com/octo/hello/commit/{sha}"),
    ("https://ada:s3cret@github.com/octo/hello.git", "https://github.com/octo/hello/commit/{sha}"),
    ("ssh://git@github.com/octo/hello.git/", "https://github.com/octo/hello/commit/{sha}"),
    ("https://github.com/octo/hello/extra", None),                       # not owner/repo
    ("git@gitlab.com:group/sub/project.git", "https://gitlab.com/group/sub/project/-/commit/{sha}"),
    ("ssh://git@gitlab.example.com:2222/g/p.git", "https://gitlab.example.com/g/p/-/commit/{sha}"),
    ("https://gitlab.example.com:8443/g/p.git", "https://gitlab.example.com:8443/g/p/-/commit/{sha}"),
    ("git@bitbucket.org:team/repo.git", "https://bitbucket.org/team/repo/commits/{sha}"),
    ("https://codeberg.org/owner/repo.git", "https://codeberg.org/owner/repo/commit/{sha}"),
    ("http://gitea.lan:3000/owner/repo.git", "http://gitea.lan:3000/owner/repo/commit/{sha}"),
    ("https://forgejo.example.org/o/r", "https://forgejo.example.org/o/r/commit/{sha}"),
    ("https://cgit.example.org/git/tools.git", "https://cgit.example.org/tools.git/commit/?id={sha}"),
    ("https://git.example.com/team/repo.git", None),                     # which software? unknown
    ("/srv/git/repo.git", None),
    ("file:///srv/git/repo.git", None),
    ("../sibling", None),
    ("", None),
])
def test_derived_links(remote, expected):
    template = links.derive_template(remote)
    got = template.replace("{commit_id}", SHA) if template else None
    assert got == (expected.format(sha=SHA) if expected else None)
    if got:
        assert "s3cret" not in got and "ada" not in got


def test_template_rules_win_and_svn_revisions_are_never_derived(tmp_path):
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "remote", "add", "origin", "git@github.com:octo/hello.git")
    rules = [{"path": str(tmp_path / "other*"), "url": "https://x/{commit_id}"}]
    assert links.commit_url(rules, str(repo), SHA) == f"https://github.com/octo/hello/commit/{SHA}"
    rules.append({"path": str(tmp_path / "r"), "url": "https://mine/{repo}/{branch}/{commit_id}"})
    assert links.commit_url(rules, str(repo), SHA, "main") == f"https://mine/r/main/{SHA}"
    assert links.commit_url([], str(repo), "12", revision="12") is None


def test_origin_wins_over_other_remotes_and_two_others_are_ambiguous(tmp_path):
    repo = tmp_path / "r"
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "remote", "add", "upstream", "git@github.com:up/stream.git")
    assert links.remote_url(str(repo)) == "git@github.com:up/stream.git"
    git(repo, "remote", "add", "fork", "git@github.com:me/stream.git")
    assert links.remote_url(str(repo)) is None
    git(repo, "remote", "add", "origin", "https://gitlab.com/g/p.git")
    assert links.remote_url(str(repo)) == "https://gitlab.com/g/p.git"
    bare = tmp_path / "b.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    assert links.remote_url(str(bare)) == str(repo)    # a bare clone's origin: a path, so no link
    assert links.commit_url([], str(bare), SHA) is None


def test_git_dirs_agree_with_git_and_every_layout_finds_the_shared_config(tmp_path):
    """A work tree, a linked worktree (.git file, commondir), --separate-git-dir (a .git file with
    no commondir) and a bare repository: git_dirs says what git says, without running git."""
    from hookagent.vcs.git import git_dirs
    main = tmp_path / "main"
    git(tmp_path, "init", "-q", str(main))
    git(main, "remote", "add", "origin", "git@github.com:octo/hello.git")
    git(main, "commit", "-q", "--allow-empty", "-m", "first")
    git(main, "worktree", "add", "-q", "-b", "topic", str(tmp_path / "linked"))
    git(tmp_path, "init", "-q", "--separate-git-dir", str(tmp_path / "elsewhere.git"), str(tmp_path / "separate"))
    git(tmp_path / "separate", "remote", "add", "origin", "https://gitlab.com/g/p.git")
    git(tmp_path, "clone", "-q", "--bare", str(main), str(tmp_path / "bare.git"))
    for name in ("main", "linked", "separate", "bare.git"):
        path = tmp_path / name
        want = git(path, "rev-parse", "--path-format=absolute", "--absolute-git-dir", "--git-common-dir").split()
        assert list(git_dirs(str(path))) == want, name
    assert links.remote_url(str(tmp_path / "linked")) == "git@github.com:octo/hello.git"
    assert links.remote_url(str(tmp_path / "separate")) == "https://gitlab.com/g/p.git"
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / ".git").write_text("not a gitdir line\n")
    assert git_dirs(str(tmp_path / "odd")) is None and links.remote_url(str(tmp_path / "odd")) is None


def test_the_installed_hook_sends_the_derived_link(tmp_path):
    with DevServer(token=TOKEN) as server:
        site = Site(tmp_path, server.url)
        repo = make_repo(tmp_path, site)
        git(repo, "remote", "add", "origin", "git@github.com:octo/hello.git")
        assert commit_file(repo, "Linked [#5]").returncode == 0
        wt = tmp_path / "wt"
        git(repo, "worktree", "add", "-q", "-b", "topic", str(wt))
        assert commit_file(wt, "From a linked worktree [#6]").returncode == 0
        assert site.cli("flush").returncode == 0
        urls = {r["message"].strip(): r["url"] for r in server.received()}
        for message in ("Linked [#5]", "From a linked worktree [#6]"):
            sha = git(wt if "worktree" in message else repo, "rev-parse", "HEAD").strip()
            assert urls[message] == f"https://github.com/octo/hello/commit/{sha}"
