"""Run a node's or central's services in this process: ``python -m tongban.run DIR``.

``tongban node run`` / ``tongban central run`` and supervisor start this module; what runs
is :func:`tongban.processes.plan_for`, once the store passed its first check
(:func:`tongban.processes.first_check`). A refusal — a damaged store, a bad configuration —
starts nothing: it is printed as ``E_CODE: 中文 / English (detail)`` on stderr and the
process exits with status 3, which supervisor is told not to retry without end
(docs/operations.md). A service's unexpected errors are logged on stderr with their
reference (``E_INTERNAL``). eventlet must patch the standard library before anything else
is imported, so this is its own entry module.
"""

from __future__ import annotations

import os
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
# Before eventlet's import: see sync/__init__.py.
os.environ.setdefault("EVENTLET_NO_GREENDNS", "yes")

import eventlet  # noqa: E402

eventlet.monkey_patch()

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from core.errors import TongbanError  # noqa: E402
from tongban.cli.refusals import for_terminal  # noqa: E402
from tongban.processes import PARTS, first_check, plan_for  # noqa: E402

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
INFO_LOGS = (
    "nameko.web.server",
    "sync.link.services",
    "central.peer_service",
    "tongban.run",
    "central.peers",
)
"""Loggers whose INFO lines go to the program's log: eventlet's WSGI server's line per
request (the access log), the sync agent's line per good session, the peer link's line per
push that delivered, the start lines, and central's line per renewal of an agreement with
another city."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tongban.run")
    parser.add_argument("home", type=Path)
    parser.add_argument("--listen", help="HOST:PORT of the web service (default: [web] listen)")
    parser.add_argument("--only", choices=PARTS, help="run only the web or only the sync services")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    for name in INFO_LOGS:
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        plan = plan_for(args.home, args.listen, args.only)
        first_check(args.home.resolve())
    except TongbanError as exc:
        print(for_terminal(exc), file=sys.stderr)
        return 3
    runner = ServiceRunner(plan.config)
    for _, service, _ in plan.services:
        runner.add_service(service)

    def stop(signum: int, frame: object) -> None:
        eventlet.spawn(runner.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    started = logging.getLogger("tongban.run")
    for line in plan.lines:
        started.info("%s", line)
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
