"""``python -m notifier_cli``: the same as the ``notifier`` command."""

from notifier_cli import main

main()
