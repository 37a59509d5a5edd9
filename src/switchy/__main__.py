"""``python -m switchy``: the switchy command line."""

from switchy.cli import main

main()
