"""The record layer: signed records, their log, and everything that checks them.

``codec`` (the only module that imports cbor2: one fenced decoder), ``envelope`` (the
signed envelope, record ids, signatures), ``keys`` (key files), ``kinds`` (each record
kind's schema and author), ``db`` (opening a store; migrations; transactions), ``log``
(the append-only log and its one door, ingest), ``ingest`` (the checks, in order),
``forks`` (the fork evidence a store holds, and where an origin is frozen), ``watermark``
(how far a store has signed its own chain, kept outside it),
``verify`` (signatures in bulk), ``trust`` (the key directory: certificates, revocations,
central's role keys), ``outcome`` (value types), ``projector`` (what keeps derived tables
in step), ``enrollment`` (requests and bundles) and ``inspect`` (offline verification).
Nothing here does networking.
"""
