"""The replica for bench/soak.py, with faults switched on and off while it serves: SIGUSR1 turns on
the faults given with ``--faults-later``, SIGUSR2 turns them off (the replica's own ``--faults``
are fixed for its life).

    python bench/soak_replica.py --stories 20000 --last-sid 85572 --faults-later reset=0.02,…
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from solidot_replica import FaultConfig, Replica, ReplicaConfig


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stories", type=int, required=True)
    parser.add_argument("--last-sid", type=int, required=True)
    parser.add_argument("--domain", default="solidot.test")
    parser.add_argument("--faults-later", default="", help="FaultConfig spec turned on by SIGUSR1")
    options = parser.parse_args()
    later = FaultConfig.parse(options.faults_later)
    replica = Replica(
        ReplicaConfig(stories=options.stories, last_sid=options.last_sid, domain=options.domain)
    )

    from twisted.internet import reactor

    from solidot_replica.server import listen

    listening, resource = listen(replica, "127.0.0.1", 0)
    calm = resource.faults.config

    def switch(signum: int, _frame: Any) -> None:
        # the injector reads its config on every response: the next answer follows the switch
        resource.faults.config = later if signum == signal.SIGUSR1 else calm

    signal.signal(signal.SIGUSR1, switch)
    signal.signal(signal.SIGUSR2, switch)
    address: Any = listening.getHost()
    print(f"READY http://{address.host}:{address.port}", flush=True)
    running: Any = reactor
    running.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
