"""The ``tongban`` command: the composition root that joins node, central and sync."""

__version__ = "0.1.0"
