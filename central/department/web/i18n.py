"""Screen texts of the department desk, in Chinese (the default) and English.

Error messages come from :mod:`core.errors`, the shared words from :mod:`web.i18n`, the
names of case states and steps from :mod:`core.cases`; this table holds the rest.
"""

from __future__ import annotations

from core.cases import EVENT_LABELS, STATE_LABELS
from web.i18n import SHARED, Texts

TEXT: dict[str, tuple[str, str]] = {
    "app": ("通办 · 部门审批", "Tongban · Department desk"),
    "queue": ("待审批", "To decide"),
    "queue.empty": ("没有待本部门审批的办件", "Nothing waits for this department's decision"),
    "decided": ("最近办结", "Recently decided"),
    "decided.none": ("还没有办结的办件", "No case decided yet"),
    "case_no": ("办件编号", "Case number"),
    "item": ("事项", "Item"),
    "applicant": ("申请人", "Applicant"),
    "name": ("姓名", "Name"),
    "doc_no": ("证件号码", "ID number"),
    "phone": ("联系电话", "Phone"),
    "from_node": ("受理窗口", "Taken in at"),
    "received": ("受理时间", "Received"),
    "deadline": ("办结期限", "Due by"),
    "limit.days": ("{n}个工作日", "{n} working days"),
    "limit.now": ("即办", "on the spot"),
    "overdue": ("已超期", "Overdue"),
    "state": ("状态", "State"),
    "notes": ("窗口备注", "Window's notes"),
    "flags": ("标记", "Flags"),
    "materials": ("申请材料", "Materials"),
    "material.required": ("必需", "required"),
    "material.optional": ("可选", "optional"),
    "material.original": ("原件", "original"),
    "material.copy": ("复印件", "copy"),
    "material.received": ("窗口已收", "received at the window"),
    "material.not_received": ("未收", "not received"),
    "material.scans": ("扫描件:待文件功能上线后在此查看", "Scans: shown here once files are available"),
    "events": ("办理过程", "History"),
    "event.refused": ("未生效", "not applied"),
    "decide": ("作出决定", "Decide"),
    "decide.none": ("本办件当前无需本部门决定", "This case needs no decision of this department now"),
    "reason": ("理由/说明", "Reason / note"),
    "reason.reject": ("不予办理的理由(必填)", "Why not (required)"),
    "missing_list": ("需补正的材料(每行一项)", "Materials to supply (one per line)"),
    "supplement.missing": ("要求补正的材料", "Materials asked for"),
    "link": ("与市平台的连接", "Link to central"),
    "link.received": ("已收到记录", "Records received"),
    "link.sent": ("本部门记录已送达中心", "This department's records at central"),
    "link.heartbeat": ("中心心跳", "Central's heartbeat"),
    "link.never": ("尚无", "none yet"),
    "link.refused": ("中心拒收", "Refused by central"),
    "department": ("部门", "Department"),
}

TEXT.update({f"state.{state.value}": label for state, label in STATE_LABELS.items()})
TEXT.update({f"event.{event.value}": label for event, label in EVENT_LABELS.items()})

TEXTS = Texts(SHARED, TEXT)
