"""Benchmarks of studio-bootstrap in the local sandbox, run by ``make bench``.

Every measurement runs on the loopback stack of ``bootstrap.sandbox`` and
ends in ``docs/benchmarks.md`` with its commands, medians and targets.
"""
