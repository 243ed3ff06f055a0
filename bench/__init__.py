"""Benchmarks: they measure and print figures; they never pass or fail (tests do that)."""
