"""An offline replica of Solidot: a deterministic site, its ground truth, and fault modes.

The real site can't be reached from the machines this project is built on, so
every test and benchmark crawls this replica instead. It is built to
``shared/solidot-site.md`` (markup, URLs, traps) and renders sid 80222 as the
saved real page. Stories are generated lazily from their sid, so a full-size
site (85.6k stories) starts in a second and serves with little memory.
"""

from solidot_replica.faults import FaultConfig
from solidot_replica.model import Replica, ReplicaConfig

__all__ = ["FaultConfig", "Replica", "ReplicaConfig"]
