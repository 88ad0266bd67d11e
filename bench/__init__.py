"""End-to-end fan-out benchmark: real Redis, real workers, the push service simulator, baselines beside them.

Run it with ``notifier bench`` (see ``bench/README.md``). Every figure is a ratio
against a baseline measured in the same run, because the machine is shared.
"""
