"""Parallel runs: the workload that drives the gateway and the run that records and watches it."""
