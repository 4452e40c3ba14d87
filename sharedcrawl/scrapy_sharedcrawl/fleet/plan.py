"""Where new workers go and which ones stop: pure decisions over what the nodes reported.

Kept apart from the HTTP calls so that the rules are read, and tested, in one place:

- a new worker goes to the node with the most free slots (ties: the node with
  fewer of our workers, then the first listed), so a fleet fills evenly and a
  node busy with other projects gets fewer;
- a stopping worker is a pending one first (it has done nothing yet), then a
  running one from the node that runs the most of ours, the newest first (it
  holds the least finished work and its leases are the youngest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scrapy_sharedcrawl.fleet.api import Job


class NoCapacity(ValueError):
    """The nodes have fewer free slots than the workers asked for."""


@dataclass(frozen=True)
class NodeLoad:
    """A node's slots and what occupies them."""

    name: str
    slots: int
    busy: int  # jobs of every project running or pending on the node
    ours: int  # our worker jobs running or pending there

    @property
    def free(self) -> int:
        return max(0, self.slots - self.busy)


def place(loads: Sequence[NodeLoad], count: int) -> list[str]:
    """The node of each of ``count`` new workers (see the module docstring); raises :class:`NoCapacity`."""
    free = {load.name: load.free for load in loads}
    ours = {load.name: load.ours for load in loads}
    if count > sum(free.values()):
        where = ", ".join(f"{name}: {slots}" for name, slots in free.items())
        raise NoCapacity(
            f"{count} more workers need {count} free slots, the nodes have {sum(free.values())} ({where}); "
            "add a node, raise its slots (scrapyd.conf max_proc and scrapy.cfg slots), or ask for fewer"
        )
    order = {load.name: index for index, load in enumerate(loads)}
    placed = []
    for _ in range(count):
        name = min(free, key=lambda node: (-free[node], ours[node], order[node]))
        placed.append(name)
        free[name] -= 1
        ours[name] += 1
    return placed


def to_cancel(jobs: Sequence[Job], count: int) -> list[Job]:
    """``count`` of these pending or running jobs to stop (see the module docstring)."""
    pending = [job for job in jobs if job.state == "pending"]
    running = sorted(
        (job for job in jobs if job.state == "running"), key=lambda job: job.start_time or "", reverse=True
    )
    chosen = pending[:count]
    per_node: dict[str, list[Job]] = {}
    for job in running:
        per_node.setdefault(job.node, []).append(job)
    while len(chosen) < count and any(per_node.values()):
        busiest = max(per_node, key=lambda node: len(per_node[node]))
        chosen.append(per_node[busiest].pop(0))
    return chosen
