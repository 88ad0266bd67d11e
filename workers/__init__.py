"""RQ side: queue names (``queues``), thin jobs and their enqueue helpers (``jobs``), the worker entry."""
