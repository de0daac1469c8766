"""The sync link: records between a child and its parent over ZeroMQ with CURVE.

``protocol`` (frames, message types, versions, limits), ``session`` (the two state
machines, driven by one table), ``flow`` (batches under credit), ``store`` (what a session
reads and writes in a store), ``transport`` (the child's side), ``endpoint`` (the parent's
side), ``agent`` (when a child syncs) and ``services`` (both as nameko services). The link
moves records; the work a store does around a session is its home's
(:class:`sync.link.transport.Home`).
"""
