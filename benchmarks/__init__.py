"""Benchmarks: scripts that print figures, not tests; run each as ``python -m benchmarks.NAME``."""
