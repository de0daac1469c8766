"""Run the node's web service in this process: ``python -m node.web.run DIR [--listen HOST:PORT]``.

``tongban node serve`` and supervisor start this module. eventlet must patch the standard
library before anything else is imported, so this is its own entry module.
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from nameko.runners import ServiceRunner  # noqa: E402

from core.errors import TongbanError  # noqa: E402
from node import config as node_config  # noqa: E402
from node.web.deps import HOME_KEY  # noqa: E402
from node.web.service import NodeWeb  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m node.web.run")
    parser.add_argument("home", type=Path)
    parser.add_argument("--listen", help="HOST:PORT (default: [web] listen of node.toml)")
    args = parser.parse_args(argv)
    try:
        config = node_config.load(args.home)
    except TongbanError as exc:
        print(exc.render("en"), file=sys.stderr)
        return 3
    listen = args.listen or config.web.listen
    runner = ServiceRunner({HOME_KEY: str(args.home.resolve()), "WEB_SERVER_ADDRESS": listen})
    runner.add_service(NodeWeb)

    def stop(signum: int, frame: object) -> None:
        eventlet.spawn(runner.stop)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.start()
    print(f"{config.node.name} ({config.node.code}): http://{listen}/", flush=True)
    runner.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
