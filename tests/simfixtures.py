"""Fixtures that start the loopback Synthesia simulator (filled in with the simulator)."""
