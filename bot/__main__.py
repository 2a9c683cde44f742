"""``python -m bot``: the command line (bot/cli.py)."""

import signal
import sys

# Until the event loop takes SIGTERM over (bot.app.serve), a stop request while `run` starts up
# (importing, loading the knowledge) ends the process at once with status 0, as a stop later
# does, instead of death by the signal. Only for `run`: an interrupted `db backup` must not say 0.
if sys.argv[1:2] == ["run"]:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))

from bot import cli

raise SystemExit(cli.main())
