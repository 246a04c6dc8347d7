"""Latency, quality, sizing and kernel benchmarks, with their results (``benchmarks/results/``).

Nothing is imported here: ``deblur bench`` imports :mod:`benchmarks.latency` when it runs, and each
module pulls in only what it needs. See ``benchmarks/README.md``.
"""
