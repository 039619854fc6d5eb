"""``python -m tests.fakes``: see ``process.py``."""

from .process import main

main()
