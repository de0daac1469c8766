"""The sync link: records between a child and its parent over ZeroMQ with CURVE.

``protocol`` (frames, message types, versions, limits), ``session`` (the order of a
session: one table that drives ``child_session`` and ``parent_session``, the two state
machines), ``flow`` (batches under credit), ``store`` (the link's tables and every
statement it runs), ``agreement`` (what child and parent agree on of each chain, by id,
and what the parent lacks), ``child_link`` and ``parent_link`` (what each side of a
session reads and writes in its store), ``scopes`` (which records concern a child),
``transport`` (the child's side), ``peers`` (who may connect), ``endpoint`` (the parent's
side), ``zmq_boundary`` (where zmq's errors
become ``SyncError``), ``agent`` (when a child syncs) and ``services`` (both as nameko
services). The link moves records; the work a store does around a session is its home's
(:class:`sync.link.transport.Home`).
"""
