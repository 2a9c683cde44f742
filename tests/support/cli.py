"""`python -m bot ...` as a child process, the way a person runs it from a shell."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from bot.config import REPO_ROOT


def run_bot(
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Runs the bot's command line; a process that hangs fails the test (it is killed)."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def one_error_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The process exited 2 with a single `error: ...` line containing every needle."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, line
    return line


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at least right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def catches(pid: int, signum: signal.Signals) -> bool:
    """Whether the process has a handler for ``signum`` installed (Linux: SigCgt in
    /proc/PID/status). Python installs its SIGINT handler while the interpreter starts, before
    it runs any module: that one says the interpreter is up."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    return False
