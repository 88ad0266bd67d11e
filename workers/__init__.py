"""RQ side: queue names, enqueue helpers, thin job functions and the worker entry point."""
