"""``python -m support.k8s_emulator --port 0 --workdir DIR``: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from support.k8s_emulator.routes import Settings
from support.k8s_emulator.server import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.k8s_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--workdir", required=True, help="pods' directories and logs go here")
    parser.add_argument("--history", type=int, default=1000, help="events kept for watches")
    parser.add_argument("--bookmark-interval", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument(
        "--grace-cap",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="longest wait between SIGTERM and SIGKILL on pod deletion",
    )
    parser.add_argument("--pull-backoff", type=float, default=0.5, metavar="SECONDS")
    args = parser.parse_args(argv)
    settings = Settings(
        history_limit=args.history,
        bookmark_interval_s=args.bookmark_interval,
        grace_cap_s=args.grace_cap,
        pull_backoff_s=args.pull_backoff,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    emulator = Emulator(args.workdir, host=args.host, port=args.port, settings=settings)
    url = emulator.start()
    print(f"listening on {url}", flush=True)
    try:
        stop.wait()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
