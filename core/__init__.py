"""The pure domain of Tongban: codes, documents, calendar, catalog, cases, grants, errors.

Nothing in this package does I/O: no SQLite, no sockets, no files, no signing.
"""
