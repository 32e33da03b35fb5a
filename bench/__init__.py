"""Benchmarks: each prints numbers next to a peer measured in the same run."""
