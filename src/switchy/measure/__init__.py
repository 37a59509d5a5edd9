"""Measurements of load tests: CDRs, metrics, reports (knows nothing of the load generator)."""
