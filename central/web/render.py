"""Central web's request context: the opened central behind every page, and the page frame."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from central.admins import admins
from central.authority import Central
from central.web.i18n import TEXTS
from web.accounts import Accounts
from web.render import BaseCtx, WebOptions, environment

DONE = frozenset(
    {
        "merged",
        "replaced",
        "discarded",
        "revoked",
        "node_revoked",
        "peer_confirmed",
        "peer_renewed",
        "peer_revoked",
    }
)
"""The changes whose success a page confirms after its redirect."""


class Ctx(BaseCtx):
    """One request to central: the opened central and the operator asking."""

    env = environment("central.web")
    texts = TEXTS

    def __init__(self, request: Request, central: Central) -> None:
        super().__init__(request, WebOptions.of(central.config.web))
        self.central = central

    @classmethod
    def build(cls, request: Request, central: Central) -> Ctx:
        """The context of ``request``; the principal is found by :meth:`identify`."""
        return cls(request, central)

    @property
    def accounts(self) -> Accounts[Central]:
        return admins(self.central)

    @property
    def actor(self) -> str:
        """The operator named in the records this request writes."""
        assert self.principal is not None, "only pages behind a login write records"
        return self.principal.actor

    @property
    def now(self) -> int:
        return self.central.store.log.clock.now()

    def frame_values(self) -> dict[str, Any]:
        return {"central": self.central.config.central, "now": self.now, "done": self.done()}

    def done(self) -> str:
        """The success message a redirect after a change asks for (``?done=merged&n=3``):
        only the messages :data:`DONE` names, so a link cannot make the page say anything."""
        key = self.request.args.get("done", "")
        if key not in DONE:
            return ""
        n = self.request.args.get("n", "")
        return self.t(
            "done." + key, n=int(n) if n.isdigit() else 0, what=self.request.args.get("what", "")[:40]
        )
