"""``python -m bot``: the command line (bot/cli.py)."""

import os
import signal
import sys

# Until the event loop takes SIGTERM over (bot.app.serve), a stop request while `run` starts up
# (importing, loading the knowledge) ends the process at once with status 0, as a stop later
# does, instead of death by the signal. Only for `run`: an interrupted `db backup` must not say 0.
# os._exit, not sys.exit: an exception raised inside an import in C code can come out as another
# error with a traceback (seen in CI: SIGTERM during `import ssl`). Nothing is written before the
# loop takes over, so there is nothing to clean up.
if sys.argv[1:2] == ["run"]:
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))

from bot import cli

raise SystemExit(cli.main())
