"""The department desk's request context: the desk behind every page, and the page frame."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

from central.department.desk import DepartmentDesk
from central.department.web.i18n import TEXTS
from core.roles import DEPARTMENT_ROLES
from web.accounts import Accounts
from web.render import BaseCtx, environment


class DeptCtx(BaseCtx):
    """One request to the desk: the department's desk and the clerk asking."""

    env = environment("central.department.web")
    texts = TEXTS

    def __init__(self, request: Request, desk: DepartmentDesk) -> None:
        super().__init__(request)
        self.desk = desk
        self._accounts = desk.accounts

    @classmethod
    def build(cls, request: Request, desk: DepartmentDesk) -> DeptCtx:
        ctx = cls(request, desk)
        ctx.identify()
        return ctx

    @property
    def accounts(self) -> Accounts[Any]:
        return self._accounts

    def frame_values(self) -> dict[str, Any]:
        """The desk's frame from its configuration alone (an error page shows it)."""
        return {"department": {"code": self.desk.code, "name": self.desk.name}}

    def page_values(self) -> dict[str, Any]:
        inbox, sent, beat = self.desk.link()
        return {
            **self.frame_values(),
            "inbox": inbox,
            "sent": sent,
            "heartbeat": beat,
            "roles": DEPARTMENT_ROLES,
        }
