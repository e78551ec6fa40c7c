"""Benchmarks: `make bench` prints a table of figures against their targets."""
