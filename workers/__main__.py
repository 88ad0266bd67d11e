"""``python -m workers``: run one worker."""

from workers.worker import main

main()
