"""``python -m fedgate.cli``."""

from . import main

main()
