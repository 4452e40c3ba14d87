"""``python -m solidot_replica`` — same as the ``solidot-replica`` command."""

from solidot_replica.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
