#!/usr/bin/env python3
"""Set up switchy in a local virtualenv and run its main job or its test suite.

    python3 dev.py run [switchy run options]   # a load test (against the simulator by default)
    python3 dev.py test [pytest options]       # lint, type checks and the whole test suite

The first call creates ``.venv`` (or ``$SWITCHY_VENV``) and installs switchy with its
development dependencies; later calls reinstall only when ``pyproject.toml`` changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("SWITCHY_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".switchy-install-stamp"


def ensure_venv() -> None:
    """Create the virtualenv and install switchy into it unless it is up to date."""
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"dev.py: creating virtualenv {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing switchy and its dependencies", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def run(*argv: str) -> int:
    print("$", " ".join(argv), flush=True)
    return subprocess.run(argv, cwd=ROOT).returncode


def main(args: list[str]) -> int:
    if not args or args[0] not in ("run", "test"):
        print(__doc__, file=sys.stderr)
        return 2
    ensure_venv()
    command, rest = args[0], args[1:]
    if command == "run":
        return run(str(BIN / "switchy"), "run", *rest)
    for check in (
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "mypy")],
    ):
        if code := run(*check):
            return code
    return run(str(BIN / "python"), "-m", "pytest", *rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
