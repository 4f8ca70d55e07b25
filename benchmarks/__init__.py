"""Repeatable measurements of ami-upgrade on the embedded AWS (``python -m benchmarks``)."""
