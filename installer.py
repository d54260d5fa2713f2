#!/usr/bin/env python3
"""Install hookagent's hooks: the same as `hookagent install`, runnable from a checkout.

    python installer.py [PATH | --hooks-dir DIR] [--global] [--config FILE] [--hooks NAME[,NAME]]
                        [--python INTERPRETER] [--print] [--no-owner-check]

The checkout is put first on sys.path, so this works without installing the package; the hook it
writes still needs an interpreter that can import hookagent (it warns when that is not the case),
and, run by root for a repository another user owns, one that user can run (it refuses otherwise).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hookagent.main import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["install", *sys.argv[1:]]))
