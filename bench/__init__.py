"""Benchmarks and a soak run of synthesia-watchd against the loopback simulator.

Not tests: nothing here passes or fails on speed. ``python -m bench`` runs the five
benchmarks and prints a markdown table; ``python -m bench.soak`` runs the fault soak.
"""
