"""Runnable quality and speed benchmarks (see the README)."""
