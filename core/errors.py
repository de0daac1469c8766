"""One error root with stable codes.

Every rejection in Tongban carries a stable code (``E_SIGNATURE_INVALID`` …) that scripts,
logs and the rejected-records table can rely on, and a message written for the person who
has to act on it: a clerk at the window or an operator at a terminal. The codes and their
texts, in Chinese (the default on clerk screens) and English, are in :mod:`core.codes`.

The tree::

    TongbanError                 code, detail; text(lang) for people
    ├── InputError               bad input from a clerk, an operator or a file
    ├── AuthorityError           grants, certificates, revocations, roles, logins
    ├── RecordError              a signed record refused at ingest (kept, with its code)
    ├── KeyFileError             key files: missing, wrong mode, wrong format, exists
    ├── StoreError               the SQLite store: busy, full, read-only, damaged, too new
    ├── EnrollmentError          node enrollment requests and bundles
    ├── ConfigError              configuration files and options
    ├── SyncError                a sync link or session (raised by :mod:`sync.link`), or the
    │                            broker link to departments (``E_BROKER_*``)
    └── InternalError            a fault of this software itself, logged with a reference

A detail is written for the log and the operator; where a clerk reads it on a Chinese
screen, the error also carries it in Chinese (``zh``), and :meth:`TongbanError.text` picks
the reader's language.

Each code belongs to exactly one class (:data:`CLASS_OF`); :func:`error` builds the error
of a code known only at run time (a peer's ERROR message, a verdict), and a test checks
every ``SomeError(ErrorCode.X)`` in the code against the table.

Foreign exceptions are translated into these at one boundary each, always with ``raise …
from exc``: sqlite3 in :mod:`sync.record.db`, cbor2 in :mod:`sync.record.codec`, nacl in
:mod:`sync.record.envelope` and :mod:`sync.record.keys`, zmq in :mod:`sync.link.zmq_boundary`,
AMQP (kombu, py-amqp, nameko's publisher and RPC errors) in :mod:`central.department.broker`.
"""

from __future__ import annotations

from core.code_texts import error_text
from core.codes import ErrorCode

__all__ = [
    "CLASS_OF",
    "GROUPS",
    "AuthorityError",
    "ConfigError",
    "EnrollmentError",
    "ErrorCode",
    "InputError",
    "InternalError",
    "KeyFileError",
    "RecordError",
    "StoreError",
    "SyncError",
    "TongbanError",
    "error",
    "error_text",
]


class TongbanError(Exception):
    """Root of every error Tongban raises on purpose.

    Args:
        code: the stable code.
        detail: what exactly was wrong (a field name, a value, a count), for the log
            and the operator; shown after the standard text.
        zh: the same detail in Chinese, for a clerk's screen (default: ``detail``).
        field: the form field at fault (``"name"``, ``"doc_no"`` …), if one is: a page marks
            it and puts the cursor in it.
    """

    default_code: ErrorCode = ErrorCode.FIELD_INVALID

    def __init__(
        self, code: ErrorCode | None = None, detail: str = "", *, zh: str = "", field: str = ""
    ) -> None:
        self.code = code if code is not None else self.default_code
        self.detail = detail
        self.detail_zh = zh
        self.field = field
        super().__init__(self.render("en"))

    def detail_in(self, lang: str = "zh") -> str:
        """The detail in ``lang``: the Chinese one on a Chinese screen when there is one."""
        return self.detail_zh if lang == "zh" and self.detail_zh else self.detail

    def render(self, lang: str = "zh") -> str:
        """``E_CODE: text[: detail]`` in the requested language."""
        return f"{self.code.value}: {self.text(lang)}"

    def text(self, lang: str = "zh") -> str:
        """The standard text plus detail, without the code."""
        detail = self.detail_in(lang)
        if lang == "zh":
            return error_text(self.code, lang) + (f"（{detail}）" if detail else "")
        return error_text(self.code, lang) + (f" ({detail})" if detail else "")


class InputError(TongbanError):
    """Bad input from a clerk, an operator or a data file."""


class AuthorityError(TongbanError):
    """A grant, certificate, revocation or role does not allow what was asked."""

    default_code = ErrorCode.NOT_AUTHORIZED


class RecordError(TongbanError):
    """A signed record refused at ingest; the record is kept with this code."""

    default_code = ErrorCode.RECORD_MALFORMED


class KeyFileError(TongbanError):
    """A key file is missing, exposed, malformed or would be overwritten."""

    default_code = ErrorCode.KEY_FILE_FORMAT


class StoreError(TongbanError):
    """The SQLite store cannot be used as asked."""

    default_code = ErrorCode.STORE_CORRUPT


class EnrollmentError(TongbanError):
    """An enrollment request or bundle is refused."""

    default_code = ErrorCode.ENROLL_REQUEST


class ConfigError(TongbanError):
    """A configuration file or option is not valid; the detail names the key."""

    default_code = ErrorCode.CONFIG


class SyncError(TongbanError):
    """A link or session failed; the code says why (``E_SYNC_*``)."""

    default_code = ErrorCode.SYNC_PROTOCOL


class InternalError(TongbanError):
    """Something this software did not expect: the person sees the code and a reference,
    the log has the traceback under the same reference."""

    default_code = ErrorCode.INTERNAL


def _codes(*names: str) -> tuple[ErrorCode, ...]:
    """The codes whose value starts with one of ``names`` (``"E_ID_"``) or equals one."""
    return tuple(
        c
        for c in ErrorCode
        if any(c.value == n or (n.endswith("_") and c.value.startswith(n)) for n in names)
    )


GROUPS: tuple[tuple[type[TongbanError], tuple[ErrorCode, ...]], ...] = (
    (
        InputError,
        _codes(
            "E_ID_", "E_ADMIN_CODE", "E_TIER_MISMATCH", "E_PHONE_INVALID", "E_FIELD_", "E_CATALOG_INVALID",
            "E_ITEM_UNKNOWN", "E_CALENDAR_INVALID", "E_CASE_", "E_MATERIALS_MISSING", "E_ACCOUNT_EXISTS",
            "E_ACCOUNT_UNKNOWN", "E_PASSWORD_WEAK", "E_NOT_FOUND", "E_REQUEST_TOO_LARGE", "E_DRAFT_",
            "E_REQUEST_JSON", "E_REQUEST_TYPE", "E_READER_",
            "E_DIR_NOT_EMPTY", "E_GRANT_INVALID", "E_GRANT_CATALOG",
            "E_FILE_TYPE", "E_FILE_TYPE_MISMATCH", "E_FILE_BOMB", "E_FILE_DAMAGED", "E_FILE_TOO_LARGE",
            "E_FILE_CASE_TOO_LARGE", "E_FILE_SCOPE", "E_PART_OPEN",
        ),
    ),
    (
        AuthorityError,
        _codes(
            "E_GRANT_WIDENS", "E_GRANT_EXPIRED", "E_GRANT_NOT_YET_VALID", "E_GRANT_REVOKED",
            "E_GRANT_CHAIN_BROKEN", "E_GRANT_AUDIENCE", "E_GRANT_DEPTH", "E_GRANT_ITEM", "E_GRANT_MODE",
            "E_CERT_", "E_NOT_AUTHORIZED", "E_NOT_DECIDER", "E_HEARTBEAT_STALE", "E_CLOCK_BEHIND",
            "E_CATALOG_EXPIRED", "E_LOGIN_", "E_SESSION_EXPIRED", "E_CSRF", "E_ROLE", "E_TOKEN_INVALID",
            "E_ACCOUNT_DISABLED", "E_BACKDATED", "E_DEPARTMENT_", "E_FILE_FORBIDDEN", "E_PEER_",
        ),
    ),
    (
        RecordError,
        _codes(
            "E_RECORD_", "E_CBOR_", "E_KEY_UNKNOWN", "E_SIGNATURE_INVALID", "E_NET_MISMATCH",
            "E_VERSION_UNSUPPORTED", "E_KIND_UNKNOWN", "E_SCHEMA", "E_CHAIN_", "E_AUTHORITY",
            "E_CATALOG_ROLLBACK", "E_CATALOG_VERSION_GAP", "E_CALENDAR_ROLLBACK", "E_CALENDAR_VERSION_GAP",
            "E_KEY_ROLE", "E_KEY_RETIRED", "E_ROOT_PROOF", "E_SYNC_NOT_CHILD",
        ),
    ),
    (KeyFileError, _codes("E_KEY_FILE_", "E_KEY_MISSING")),
    (
        StoreError,
        _codes(
            "E_STORE_", "E_VERIFY_FAILED", "E_CENTRAL_REBUILDING", "E_FILE_HASH", "E_FILE_BUDGET",
            "E_FILE_MISSING", "E_FILE_OFFSET",
        ),
    ),
    (EnrollmentError, _codes("E_ENROLL_", "E_ALREADY_ENROLLED", "E_NOT_ENROLLED")),
    (ConfigError, _codes("E_CONFIG", "E_NOT_INITIALIZED", "E_PROVISION_BUSY")),
    (
        SyncError,
        _codes(
            "E_SYNC_PROTOCOL", "E_SYNC_VERSION", "E_SYNC_TOO_LARGE", "E_SYNC_PEER_", "E_SYNC_CREDIT",
            "E_SYNC_TIMEOUT", "E_SYNC_UNREACHABLE", "E_SYNC_BUSY", "E_SYNC_FLOOD", "E_BROKER_",
            "E_FILE_UNREFERENCED", "E_FILE_FLOOD",
        ),
    ),
    (InternalError, _codes("E_INTERNAL")),
)  # fmt: skip
"""The codes of each class; every code is in exactly one group (a test checks)."""

CLASS_OF: dict[ErrorCode, type[TongbanError]] = {code: cls for cls, codes in GROUPS for code in codes}
"""The one class of each code: ``CLASS_OF[code](code, detail)`` is the error to raise."""


def error(code: ErrorCode, detail: str = "", *, zh: str = "") -> TongbanError:
    """The error of ``code``, of its class (:data:`CLASS_OF`): for a code chosen at run time."""
    return CLASS_OF[code](code, detail, zh=zh)
