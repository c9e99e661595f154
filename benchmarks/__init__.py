"""Reproducible benchmarks that print ratios against hand-written baselines."""
