"""One-time enrollment tokens: central issues one for a node code, and only a request that
carries it is certified (threat 11: whoever carries a request to central cannot have any
key certified for any code that is still free).

:func:`issue` makes a random token for one code, valid for some hours, and keeps only its
SHA-256 (``enrollment_tokens``, :class:`central.store.CentralStore`); the token is shown
once, to the operator who carries it to the node, where ``tongban node request`` signs it
into the node's request. :func:`check` is what ``enroll`` asks last of a request that is
otherwise fit to be certified (:func:`central.authority.enroll`, which uses the token up in
the transaction that appends the certificate). Each refusal has its code:

========================== ==========================================================
``E_ENROLL_TOKEN_MISSING``  the request carries no token (format 1, made before tokens)
``E_ENROLL_TOKEN``          central issued no such token
``E_ENROLL_TOKEN_CODE``     the token was issued for another code
``E_ENROLL_TOKEN_USED``     the token has enrolled a node already
``E_ENROLL_TOKEN_EXPIRED``  the token's hours are over
========================== ==========================================================
"""

from __future__ import annotations

from collections.abc import Callable

from central.store import CentralStore
from core.admin import Tier, tier_for_code
from core.clock import local_time
from core.errors import EnrollmentError, ErrorCode, InputError, TongbanError
from sync.record.enrollment import EnrollmentRequest, new_token, token_digest

VALID_HOURS = 72
"""How long a token is valid by default: time to carry it to the node and back."""
MAX_VALID_HOURS = 24 * 30


def issue(
    store: CentralStore, city: str, code: str, *, valid_hours: int, random: Callable[[int], bytes]
) -> tuple[str, int]:
    """A token for enrolling ``code`` in ``city``, and when it expires.

    Raises:
        EnrollmentError: ``E_ENROLL_TIER`` (not a node's code) or ``E_ENROLL_PARENT`` (not in
            this city); nothing is kept then.
        InputError: ``E_FIELD_INVALID``: ``valid_hours`` out of 1 … :data:`MAX_VALID_HOURS`.
    """
    try:
        tier = tier_for_code(code)
    except TongbanError as exc:
        raise EnrollmentError(ErrorCode.ENROLL_TIER, exc.render("en")) from exc
    if tier is Tier.CENTRAL:
        raise EnrollmentError(ErrorCode.ENROLL_TIER, "central is not enrolled")
    if code[:6] != city:
        raise EnrollmentError(ErrorCode.ENROLL_PARENT, f"{code} is not in {city}")
    if not 1 <= valid_hours <= MAX_VALID_HOURS:
        raise InputError(ErrorCode.FIELD_INVALID, f"valid hours must be 1 to {MAX_VALID_HOURS}")
    token = new_token(random)
    now = store.log.clock.now()
    expires = now + valid_hours * 3600
    store.add_enrollment_token(token_digest(token), code, now, expires)
    return token, expires


def check(store: CentralStore, request: EnrollmentRequest) -> bytes:
    """The digest of ``request``'s token, if it is a valid unused token for its code."""
    if request.token is None:
        raise EnrollmentError(
            ErrorCode.ENROLL_TOKEN_MISSING, "remake the request with 'tongban node request DIR --token T'"
        )
    digest = token_digest(request.token)
    token = store.enrollment_token(digest)
    if token is None:
        raise EnrollmentError(ErrorCode.ENROLL_TOKEN, "central issued no such token")
    if token.code != request.code:
        raise EnrollmentError(ErrorCode.ENROLL_TOKEN_CODE, f"the token is for {token.code}")
    if token.used_at is not None:
        raise EnrollmentError(ErrorCode.ENROLL_TOKEN_USED, f"used {_when(token.used_at)}")
    if store.log.clock.now() >= token.expires_at:
        raise EnrollmentError(ErrorCode.ENROLL_TOKEN_EXPIRED, f"expired {_when(token.expires_at)}")
    return digest


def _when(ts: int) -> str:
    return local_time(ts).strftime("%Y-%m-%d %H:%M")
