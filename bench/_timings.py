"""Where a page run under :data:`bench.page_speed.TIMED_PAGE` leaves its script time.

A module of its own, so the wrapper and the bench find the same list whether
the bench runs as ``python -m bench.page_speed`` (``__main__``) or is imported.
"""

script_seconds: list[float] = []
