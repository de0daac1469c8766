"""The web kit: what the node's clerk service and central's operator service share.

Accounts, logins, sessions, the login backoff and CSRF (:mod:`web.accounts`, its tables
:mod:`web.account_store`), the request context, the rendering helpers with the security
headers and the error pages (:mod:`web.render`), the page wrapper, login and static files
(:mod:`web.pages`), strict JSON bodies (:mod:`web.json_body`), the per-worker store pool
(:mod:`web.deps`), the language machinery (:mod:`web.i18n`), and the shared CSS, script
and templates. It sits between ``sync`` and the two services in the layers: it may use
``core`` and ``sync``, never ``node`` or ``central``.
"""
