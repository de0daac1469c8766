"""Central's operator web service: the catalog, delegation, the dashboard and the audit.

Server-rendered pages on the web kit (:mod:`web`), like the node's clerk pages: one nameko
http service (:mod:`central.web.service`), Chinese first with English one click away, a
strict Content-Security-Policy, CSRF on every form, and every refusal shown with its code.
"""
