"""``python -m ecgaudit``."""

from ecgaudit.cli import main

main()
