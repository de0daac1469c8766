"""Checking signatures in bulk: a batch's Ed25519 signatures before the store's work.

Ingest hands the signatures whose keys it already holds to a :class:`Verifier` first, so
that they can be checked while the store's sequential work goes on; a record whose key
arrives inside the same batch is verified in line, when its turn comes. libsodium releases
the GIL while it verifies, so :class:`ThreadVerifier` spreads a batch over the cores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

SignatureJob = tuple[bytes, bytes, bytes]
"""(public key, signed message, signature)."""
Pending = Callable[[], list[bool]]
"""The answers to a submitted list of jobs, in order; calling it waits for them."""


class Verifier(Protocol):
    """Checks signatures in any way it likes: now, later, on other threads."""

    def submit(self, jobs: Sequence[SignatureJob]) -> Pending: ...


def verify_chunk(jobs: Sequence[SignatureJob]) -> list[bool]:
    """Check ``jobs`` one after the other (what a worker of a parallel verifier runs)."""
    answers = []
    verify_keys: dict[bytes, VerifyKey] = {}
    for public_key, message, sig in jobs:
        try:
            key = verify_keys.get(public_key)
            if key is None:
                key = verify_keys[public_key] = VerifyKey(public_key)
            key.verify(message, sig)
        except (BadSignatureError, ValueError, TypeError):
            answers.append(False)
        else:
            answers.append(True)
    return answers


class SerialVerifier:
    """The default: each chunk is checked on this thread when its first answer is needed."""

    def submit(self, jobs: Sequence[SignatureJob]) -> Pending:
        answers: list[list[bool]] = []

        def wait() -> list[bool]:
            if not answers:
                answers.append(verify_chunk(jobs))
            return answers[0]

        return wait


class ThreadVerifier:
    """Checks chunks on OS threads while the caller goes on with the store's work.

    libsodium releases the GIL while it verifies, so with more than one core the
    signatures of a batch are checked in parallel with decoding and appending. Under
    eventlet's monkey-patching these threads would be green: use real threads there
    (``sync.link.services`` uses eventlet's pool of real threads).
    """

    def __init__(self, workers: int | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.workers = workers or max(1, os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="verify")

    def submit(self, jobs: Sequence[SignatureJob]) -> Pending:
        return self._pool.submit(verify_chunk, list(jobs)).result

    def close(self) -> None:
        self._pool.shutdown(wait=False)


SERIAL = SerialVerifier()
CHUNK = 32
"""Records per verification job: small enough that the store's work starts early."""
