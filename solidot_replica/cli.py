"""``solidot-replica``: serve the offline replica, print its ground truth, or describe it.

solidot-replica serve --stories 300 --last-sid 80300 --port 8080 [--crawl-delay 0.5]
solidot-replica truth --stories 300 --last-sid 80300 --base-url http://www.solidot.test:8080
solidot-replica info --stories 85572
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from scrapy_sharedcrawl.closed_pipe import ends_quietly_on_closed_pipe
from solidot_replica.faults import FaultConfig
from solidot_replica.model import FULL_HISTORY_LAST_SID, Replica, ReplicaConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="solidot-replica", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the replica over HTTP")
    truth = commands.add_parser("truth", help="print the expected item of every served story (JSON Lines)")
    info = commands.add_parser("info", help="describe the replica: sid window, days, gaps")
    for command in (serve, truth, info):
        command.add_argument("--stories", type=int, default=300, help="sid slots in the window (default 300)")
        command.add_argument("--last-sid", type=int, default=FULL_HISTORY_LAST_SID)
        command.add_argument("--seed", type=int, default=1, help="content seed")
        command.add_argument("--gap-rate", type=float, default=0.01, help="share of sids that answer 404")
        command.add_argument("--revision", type=int, default=0, help="later visits: some stories changed")
        command.add_argument("--home-size", type=int, default=20, help="stories on home and category pages")
        command.add_argument("--domain", default="solidot.test", help="serve www.<domain>, linux.<domain> …")
        command.add_argument(
            "--faults", default="", help="e.g. reset=0.05,burst=50x5,throttle=0.05,slow=0.1,hostile=25"
        )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (0: any free port)")
    serve.add_argument(
        "--crawl-delay", type=float, default=None, help="add 'Crawl-delay: N' (seconds) to robots.txt"
    )
    truth.add_argument(
        "--base-url", default="http://www.solidot.test:8080", help="SOLIDOT_BASE_URL of the crawl"
    )
    return parser


def config_from(options: argparse.Namespace) -> ReplicaConfig:
    return ReplicaConfig(
        stories=options.stories,
        last_sid=options.last_sid,
        seed=options.seed,
        gap_rate=options.gap_rate,
        revision=options.revision,
        home_size=options.home_size,
        domain=options.domain,
        faults=FaultConfig.parse(options.faults),
    )


def serve(replica: Replica, host: str, port: int, crawl_delay: float | None = None) -> int:
    from twisted.internet import reactor

    from solidot_replica.server import listen

    listening, _ = listen(replica, host, port, crawl_delay)
    address: Any = listening.getHost()
    print(f"READY http://{address.host}:{address.port}", flush=True)
    running: Any = reactor
    running.run()  # SIGTERM / Ctrl-C stop it
    return 0


def print_truth(replica: Replica, base_url: str) -> int:
    """Every item a correct crawl yields; malformed pages and hostile ones it drops yield none."""
    unserved = set(replica.unserved_sids())
    for sid in replica.sids():
        if sid not in unserved:
            sys.stdout.write(json.dumps(replica.truth(sid, base_url), ensure_ascii=False) + "\n")
    return 0


def print_info(replica: Replica) -> int:
    days = replica.days()
    info = {
        "sids": [replica.first_sid, replica.config.last_sid],
        "stories": len(replica.sids()),
        "gaps": len(replica.gap_sids()),
        "malformed": sum(replica.config.faults.is_malformed(sid) for sid in replica.sids()),
        "hostile": dict(Counter(replica.hostile_sids().values())),
        "days": [days[0].isoformat(), days[-1].isoformat(), len(days)],
        "changed_since_revision_0": len(replica.changed_sids()),
    }
    print(json.dumps(info, indent=2))
    return 0


@ends_quietly_on_closed_pipe
def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        replica = Replica(config_from(options))
    except ValueError as error:
        print(f"solidot-replica: {error}", file=sys.stderr)
        return 2
    if options.command == "serve":
        return serve(replica, options.host, options.port, options.crawl_delay)
    if options.command == "truth":
        return print_truth(replica, options.base_url)
    return print_info(replica)
