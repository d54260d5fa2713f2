"""`hookagent devserver`: run the local Tracker-compatible receiver until SIGINT or SIGTERM.

Prints one line with its URL and where the token came from, then serves; point
``tracker.url`` at that URL and put the token in ``tracker.token_file`` to try hookagent
without a real tracker. The stories page is at the URL itself.
"""
from __future__ import annotations

import argparse
import math
import os

TOKEN_ENV = "HOOKAGENT_DEVSERVER_TOKEN"
DEFAULT_TOKEN = "devtoken"


def _story_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected story ids separated by commas, like 101,102; got {text!r}") from None
    if not ids or any(i <= 0 for i in ids):
        raise argparse.ArgumentTypeError(f"expected positive story ids like 101,102; got {text!r}")
    return ids


def _number(expected: str, low: float, high: float = math.inf):
    """An argparse type: a finite number from low to high, else "expected <expected>; got ..."."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value
    return parse


_probability = _number("a probability between 0 and 1, like 0.3", 0.0, 1.0)
_seconds = _number("0 or more seconds, like 0.5", 0.0)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535 (0: any free port); got {text!r}")
    return int(text)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; anything else exposes it)")
    p.add_argument("--port", type=_port, default=8990, help="port (default 8990; 0 = any free port)")
    p.add_argument("--token", default=None,
                   help=f"the X-TrackerToken to accept (default: ${TOKEN_ENV}, else {DEFAULT_TOKEN!r});"
                        " a token given here is visible to other users in `ps`, prefer the variable")
    p.add_argument("--stories", type=_story_ids, default=None, metavar="ID,ID",
                   help="the only stories that exist, like 101,102 (default: create any story referenced)")
    p.add_argument("--chaos", type=_probability, default=0.0, metavar="P",
                   help="fail each POST with probability P (500/502/503/429/connection reset)")
    p.add_argument("--delay", type=_seconds, default=0.0, metavar="SECONDS",
                   help="wait this long before each answer (a slow server)")
    p.add_argument("--seed", type=int, default=None, help="seed for --chaos, to repeat a run")


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from hookagent.devserver import DevServer
    from hookagent.errors import HookagentError

    if args.token:
        token, source = args.token, "from --token"
    elif os.environ.get(TOKEN_ENV):
        token, source = os.environ[TOKEN_ENV], f"from ${TOKEN_ENV}"
    else:
        token, source = DEFAULT_TOKEN, f"the default {DEFAULT_TOKEN!r}, set ${TOKEN_ENV} to change it"

    server = DevServer(args.host, args.port, token, args.stories, chaos=args.chaos,
                       seed=args.seed, delay=args.delay)
    try:
        server.start()
    except OSError as exc:
        raise HookagentError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}): choose another"
            " --port (0 picks any free port) or --host") from None

    stop = threading.Event()

    def on_signal(signum, frame):  # only sets a flag; the main loop does the work
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        stories = ",".join(map(str, args.stories)) if args.stories else "created on first reference"
        extras = "".join([f", chaos {args.chaos}" if args.chaos else "",
                          f", delay {args.delay}s" if args.delay else ""])
        print(f"hookagent devserver: listening on {server.url}; token: {source}; stories: {stories}"
              f"{extras}; Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("hookagent devserver: stopped", flush=True)
    return 0
