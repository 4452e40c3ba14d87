"""Serve mongoeco over the MongoDB wire protocol: a stand-in mongod for tests and benchmarks.

mongoeco has no command-line launcher, and no mongod can be installed here, so
tests start this script with ``.venv-mongoeco/bin/python`` (see
``deploy/setup-mongoeco.sh``). It prints one line, ``READY mongodb://HOST:PORT``,
once it accepts connections, and stops cleanly on SIGTERM or SIGINT.

    .venv-mongoeco/bin/python deploy/mongoeco_server.py --port 27017
    .venv-mongoeco/bin/python deploy/mongoeco_server.py --engine sqlite --path /tmp/mongo.db
    .venv-mongoeco/bin/python deploy/mongoeco_server.py --port 0 --user crawler:secret

The memory engine keeps nothing across a restart (documents and indexes are
gone); the SQLite engine keeps them in ``--path`` but slows as it grows.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from mongoeco.engines.memory import MemoryEngine
from mongoeco.engines.sqlite import SQLiteEngine
from mongoeco.wire.auth import WireAuthUser
from mongoeco.wire.proxy import AsyncMongoEcoProxyServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=27017, help="0 picks a free port")
    parser.add_argument("--engine", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--path", help="database file of the sqlite engine")
    parser.add_argument(
        "--user",
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="require SCRAM authentication (authSource admin) as this user; repeatable",
    )
    args = parser.parse_args(argv)
    if args.engine == "sqlite" and not args.path:
        parser.error("--engine sqlite needs --path FILE")
    if any(":" not in user for user in args.user):
        parser.error("--user takes NAME:PASSWORD")
    return args


async def serve(args: argparse.Namespace) -> None:
    engine = MemoryEngine() if args.engine == "memory" else SQLiteEngine(args.path)
    users = tuple(WireAuthUser(*user.split(":", 1)) for user in args.user)
    server = AsyncMongoEcoProxyServer(engine=engine, host=args.host, port=args.port, auth_users=users)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    address = await server.start()
    print(f"READY mongodb://{address.host}:{address.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
