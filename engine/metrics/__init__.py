"""Metrics in and out: the MetricsSource seam (own samples, Prometheus) and the Prometheus text format."""
