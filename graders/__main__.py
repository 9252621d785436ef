"""``python -m graders`` is the ``kgrade`` command."""

from graders.cli import main

main()
