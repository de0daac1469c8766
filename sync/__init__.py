"""Signed records and their movement: codec, envelope, keys, record log, sync sessions.

This is the only package that imports ``cbor2`` (in :mod:`sync.codec`) and ``nacl``.
"""
