"""The command line's one error handler (hookagent.main): exit codes, one-line messages, the crash
log; the shared --config option and the one way to warn. In-process: `main([...])` with capsys."""
from __future__ import annotations

import os
import stat

import pytest

from hookagent import __version__, main as main_mod
from hookagent.commands import CONFIG_HELP, status
from hookagent.errors import ConfigError, HookagentError, Interrupted, warn
from hookagent.main import EXIT_CRASH, EXIT_ERROR, EXIT_INTERRUPTED, main


@pytest.fixture
def cache(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv("HOOKAGENT_CACHE_DIR", str(where))
    return where


def raising(exc: BaseException):
    def run(args):
        raise exc
    return run


def test_a_hookagent_error_is_one_line_and_exit_2(tmp_path, capsys, cache):
    missing = tmp_path / "nope.yaml"
    assert main(["status", "--config", str(missing)]) == EXIT_ERROR == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"hookagent: cannot read config {missing}: No such file or directory; pass an existing" \
                  " file with --config\n"
    assert not cache.exists(), "an expected error writes no crash log"


def test_a_multi_line_error_message_is_still_printed_as_one_line(monkeypatch, capsys):
    monkeypatch.setattr(status, "run", raising(ConfigError("first\n  second\n")))
    assert main(["status"]) == 2
    assert capsys.readouterr().err == "hookagent: first second\n"


def test_an_unexpected_exception_names_the_crash_log_which_holds_the_traceback(monkeypatch, capsys, cache):
    monkeypatch.setattr(status, "run", raising(ValueError("boom\nsecond line")))
    assert main(["status", "--config", "/secret/argument"]) == EXIT_CRASH == 3
    out, err = capsys.readouterr()
    log = cache / "hookagent-crash.log"
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("hookagent: unexpected error (ValueError: boom second line)")
    assert str(log) in err and "bug" in err
    text = log.read_text()
    assert text.startswith("=== ") and f"hookagent {__version__}" in text and "command status" in text
    assert "Traceback (most recent call last)" in text and "ValueError: boom" in text
    assert "/secret/argument" not in text, "arguments may hold a token: only the command's name is logged"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600

    monkeypatch.setattr(status, "run", raising(RuntimeError("again")))
    assert main(["status"]) == 3
    text = log.read_text()
    assert text.count("=== ") == 2 and "RuntimeError: again" in text, "crashes are appended, not replaced"


def test_a_crash_whose_log_cannot_be_written_prints_the_traceback_instead(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("HOOKAGENT_CACHE_DIR", str(blocker / "cache"))   # a folder inside a file
    monkeypatch.setattr(status, "run", raising(KeyError("k")))
    assert main(["status"]) == 3
    err = capsys.readouterr().err
    assert err.startswith("hookagent: unexpected error (KeyError: 'k')") and "could not be written" in err
    assert "Traceback (most recent call last)" in err


def test_ctrl_c_exits_130(monkeypatch, capsys, cache):
    monkeypatch.setattr(status, "run", raising(KeyboardInterrupt()))
    assert main(["status"]) == EXIT_INTERRUPTED == 130
    assert capsys.readouterr().err == "hookagent: interrupted\n"
    assert not cache.exists()


def test_an_interrupted_command_says_how_to_go_on_and_exits_130(monkeypatch, capsys):
    monkeypatch.setattr(status, "run", raising(Interrupted("stopped; run it again to go on")))
    assert main(["status"]) == 130
    assert capsys.readouterr().err == "hookagent: stopped; run it again to go on\n"


def test_usage_errors_stay_argparse_s_and_no_command_prints_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["status", "--no-such-flag"])
    assert info.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["install"], ["uninstall"], ["status"], ["retry"], ["backfill", "."]])
def test_every_command_that_reads_a_config_takes_the_same_config_option(argv, capsys):
    args = main_mod.build_parser(only=argv[0]).parse_args([*argv, "--config", "c.yaml"])
    assert args.config == "c.yaml"
    with pytest.raises(SystemExit):
        main([argv[0], "--help"])
    assert "--config FILE" in capsys.readouterr().out


def test_the_shared_config_help_names_the_lookup_order():
    assert "$HOOKAGENT_CONFIG" in CONFIG_HELP and "/etc/hookagent/config.yaml" in CONFIG_HELP


def test_warn_is_one_line_on_stderr(capsys):
    warn("tracker.url: plain http")
    assert capsys.readouterr() == ("", "hookagent: warning: tracker.url: plain http\n")


def test_errors_carry_their_exit_code():
    assert HookagentError("x").exit_code == 2 and ConfigError("x").exit_code == 2
    assert Interrupted("x").exit_code == 130
    assert os.path.basename(main_mod.crash_log_path()) == "hookagent-crash.log"
