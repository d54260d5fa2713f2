"""What the benchmarks share: an isolated git environment and a site (config + token + spool)."""
from __future__ import annotations

import os

import yaml

from testing.repos import free_port  # noqa: F401  (re-exported for the benchmarks)

TOKEN = "bench-token"


def git_env(base: str) -> dict:
    """The environment with a private git config (identity, default branch) and hook cache."""
    env = dict(os.environ)
    gitconfig = os.path.join(base, "gitconfig")
    with open(gitconfig, "w") as fh:
        fh.write("[user]\n\tname = Bench\n\temail = bench@example.com\n[init]\n\tdefaultBranch = main\n")
    env.update(GIT_CONFIG_GLOBAL=gitconfig, GIT_CONFIG_NOSYSTEM="1",
               HOOKAGENT_CACHE_DIR=os.path.join(base, "cache"))
    return env


def make_site(base: str, name: str, url: str, *, api: str = "v3", autostart: bool = True,
              min_backoff: float = 30, max_backoff: float = 60, timeout: float = 5) -> str:
    """A folder base/name with a token file, a spool and a config; returns the config's path."""
    d = os.path.join(base, name)
    os.makedirs(d)
    token = os.path.join(d, "token")
    with open(token, "w") as fh:
        fh.write(TOKEN + "\n")
    os.chmod(token, 0o600)
    conf = os.path.join(d, "config.yaml")
    with open(conf, "w") as fh:
        yaml.safe_dump({"spool_dir": os.path.join(d, "spool"),
                        "tracker": {"url": url, "api": api, "token_file": token, "timeout": timeout},
                        "retry": {"min_backoff": min_backoff, "max_backoff": max_backoff},
                        "agent": {"autostart": autostart, "log_file": os.path.join(d, "agent.log")}}, fh)
    return conf


def topic_history(path: str, n: int, stories: int, env: dict) -> None:
    """A repository at ``path``: main with one commit, and topic with ``n`` commits after it,
    each referencing one of ``stories`` stories (``Topic change I [#1000+I%stories]``), one
    second apart (git fast-import: seconds for thousands)."""
    import subprocess
    subprocess.run(["git", "init", "-q", path], env=env, check=True)
    script = ["commit refs/heads/main", "mark :1", "committer B <b@x> 1700000000 +0000", "data 5", "base",
              "M 644 inline base.txt", "data 2", "b", ""]
    for i in range(n):
        script += ["commit refs/heads/topic", f"mark :{i + 2}", f"committer B <b@x> {1700000001 + i} +0000",
                   "data <<EOM", f"Topic change {i} [#{1000 + i % stories}]", "EOM", f"from :{i + 1}",
                   f"M 644 inline t{i}.txt", "data 2", "t", ""]
    subprocess.run(["git", "-C", path, "fast-import", "--quiet"], input="\n".join(script).encode(),
                   env=env, check=True)
