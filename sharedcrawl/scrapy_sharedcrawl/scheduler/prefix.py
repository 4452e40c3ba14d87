"""The prefix of every stat the scheduler and its parts keep (``scheduler/enqueued``, ``scheduler/acked``…):
one constant, so that a stat can't drift from the others' namespace."""

STATS = "scheduler/"
