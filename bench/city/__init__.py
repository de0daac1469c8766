"""A whole city on one machine: central, 12 towns and 228 villages (:mod:`bench.city.simulation`)."""

from bench.city.simulation import run

__all__ = ["run"]
