"""Configuration: the example loads, errors name the key path, unknown keys are warned about."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from hookagent import config
from hookagent.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads_with_every_documented_key(capsys):
    cfg = config.load(str(ROOT / "config.example.yaml"))
    assert cfg.tracker.api == "v3"
    assert cfg.tracker.url == "https://www.pivotaltracker.com"
    assert cfg.tracker.token_file == "/etc/hookagent/token"
    assert cfg.retry.min_backoff == 30 and cfg.retry.max_backoff == 3600 and cfg.retry.max_age == 604800
    assert cfg.repos[0].url == "https://git.example.com/{repo}/commit/{commit_id}"
    assert cfg.agent.autostart is True
    assert cfg.reverts == "link"
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("text, fragment", [
    ("tracker: {api: v9}", "tracker.api"),
    ("tracker: {url: ftp://x}", "tracker.url"),
    ("tracker: {timeout: soon}", "tracker.timeout"),
    ("tracker: {timeout: -1}", "tracker.timeout"),
    ("retry: {min_backoff: 10, max_backoff: 5}", "retry"),
    ("retry: {max_age: 0}", "retry.max_age"),
    ("repos: [{url: x}]", "repos[0]"),
    ("agent: {autostart: sometimes}", "agent.autostart"),
    ("tracker: [1, 2]", "tracker"),
    ("- just\n- a list", "mapping"),
    ("tracker: {url: 'http://x\n", "YAML"),
    ("reverts: skip", "reverts: 'skip' is not one of link, ignore"),
    ("reverts: [link]", "reverts: expected str"),
])
def test_errors_name_the_key_path(text, fragment):
    with pytest.raises(ConfigError) as err:
        config.parse(text, "/etc/hookagent/config.yaml")
    assert fragment in str(err.value)


def test_unknown_keys_are_warned_about_and_ignored(capsys):
    cfg = config.parse("tracker: {api: v5, colour: blue}\nspeling: 1\n", "/x/c.yaml")
    err = capsys.readouterr().err
    assert "tracker.colour: unknown key" in err and "speling: unknown key" in err
    assert cfg.tracker.api == "v5"


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    cfg = config.parse("spool_dir: spool\ntracker: {token_file: tok}\n", str(tmp_path / "c.yaml"))
    assert cfg.spool_dir == str(tmp_path / "spool")
    assert cfg.tracker.token_file == str(tmp_path / "tok")


def test_token_file_readable_by_others_is_warned_about(tmp_path, capsys):
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    tok.chmod(0o644)
    cfg = config.parse(f"tracker: {{token_file: {tok}}}", str(tmp_path / "c.yaml"))
    assert cfg.read_token() == "s3cret"
    err = capsys.readouterr().err
    assert "readable by group or others" in err and "s3cret" not in err
    tok.chmod(0o600)
    assert cfg.read_token() == "s3cret"
    assert "readable" not in capsys.readouterr().err


def test_token_never_in_repr(tmp_path):
    cfg = config.parse("tracker: {token: s3cret}", str(tmp_path / "c.yaml"))
    assert "s3cret" not in repr(cfg)


def test_missing_token_env_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_TOKEN_VAR", raising=False)
    cfg = config.parse("tracker: {token_env: NO_SUCH_TOKEN_VAR}", str(tmp_path / "c.yaml"))
    with pytest.raises(ConfigError, match="NO_SUCH_TOKEN_VAR"):
        cfg.read_token()


def test_without_a_config_file_the_defaults_hold(tmp_path, monkeypatch):
    monkeypatch.delenv("HOOKAGENT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    if os.path.exists("/etc/hookagent/config.yaml"):
        pytest.skip("this machine has /etc/hookagent/config.yaml: the default lookup finds it")
    cfg = config.load(None)
    assert cfg.path is None
    assert cfg.tracker.destination == "v3 https://www.pivotaltracker.com"


@pytest.mark.parametrize("url", ["http://svc:PASSWORD@127.0.0.1:8099", "https://PASSWORD@tracker.example.com/base"])
def test_credentials_in_the_tracker_url_are_refused_and_never_echoed(tmp_path, url):
    with pytest.raises(ConfigError) as info:
        config.parse(f"tracker: {{url: '{url}', api: v5}}", str(tmp_path / "c.yaml"))
    assert "tracker.url" in str(info.value) and "token_file" in str(info.value)
    assert "PASSWORD" not in str(info.value)


@pytest.mark.parametrize("value", ["file", "stderr", "journald"])
def test_agent_log_takes_file_stderr_or_journald(tmp_path, value):
    assert config.parse(f"agent: {{log: {value}}}", str(tmp_path / "c.yaml")).agent.log == value


@pytest.mark.parametrize("text, message", [
    ("agent: {log: syslog}", "agent.log: 'syslog' is not one of file, stderr, journald"),
    ("tracker: {token_file: '${CREDENTIALS_DIRECTORY}/tracker-token'}",
     "holds a $ variable, which is not expanded; for a systemd credential (LoadCredential=NAME:/path) write"
     " tracker.token_credential: NAME"),
    ("tracker: {token_credential: ../token}", "tracker.token_credential: '../token' is not a credential name"),
])
def test_service_settings_are_checked_with_the_fix(tmp_path, text, message):
    with pytest.raises(ConfigError) as err:
        config.parse(text, str(tmp_path / "c.yaml"))
    assert message in str(err.value)


def _credential(folder: Path, token: str) -> Path:
    """What LoadCredential=tracker-token:... leaves: $CREDENTIALS_DIRECTORY/tracker-token, 0400."""
    folder.mkdir()
    path = folder / "tracker-token"
    path.write_text(token + "\n")
    path.chmod(0o400)
    return folder


def test_token_credential_is_read_under_systemd_and_token_file_otherwise(tmp_path, monkeypatch, capsys):
    (tmp_path / "token").write_text("from-the-file\n")
    (tmp_path / "token").chmod(0o600)
    cfg = config.parse("tracker: {token_file: token, token_credential: tracker-token}", str(tmp_path / "c.yaml"))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert cfg.read_token() == "from-the-file"            # `hookagent flush` by hand, a hook's agent
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(_credential(tmp_path / "creds", "from-systemd")))
    assert cfg.read_token() == "from-systemd"              # the service
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "another-services"))
    assert cfg.read_token() == "from-the-file"            # a hook run by another service
    assert "warning" not in capsys.readouterr().err


def test_token_credential_errors_name_the_unit_line_to_add(tmp_path, monkeypatch):
    only = config.parse("tracker: {token_credential: tracker-token}", str(tmp_path / "c.yaml"))
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"\$CREDENTIALS_DIRECTORY is not set: only a systemd service with"
                                          r" LoadCredential=tracker-token:/path/to/token gets it"):
        only.read_token()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with pytest.raises(ConfigError, match="cannot read .*tracker-token .*LoadCredential=tracker-token:/path/to/token"):
        only.read_token()
    both = config.parse("tracker: {token_file: /nonexistent/token, token_credential: tracker-token}",
                        str(tmp_path / "c.yaml"))
    with pytest.raises(ConfigError) as err:
        both.read_token()
    assert str(err.value).startswith(f"tracker.token_credential: no credential tracker-token in {tmp_path}, and"
                                     " tracker.token_file: cannot read /nonexistent/token")
