"""Screen texts of the clerk web service, in Chinese (the default) and English.

Error messages come from :mod:`core.errors` (each code has both texts); the words every
service shares (login, language switch …) from :mod:`web.i18n`; the names of case states,
steps, delivery methods and ratings from :mod:`core.cases`; this table holds everything
else a clerk's page shows. A missing key is a test failure, not a blank on
screen.
"""

from __future__ import annotations

from core.cases import DELIVERY_LABELS, EVENT_LABELS, RATING_LABELS, STATE_LABELS
from web.i18n import SHARED, Texts

TEXT: dict[str, tuple[str, str]] = {
    "app": ("通办 · 政务服务", "Tongban · Government Services"),
    "home": ("首页", "Home"),
    "catalog": ("事项清单", "Service items"),
    "intake": ("受理", "Intake"),
    "cases": ("办件查询", "Cases"),
    "queue": ("待审批", "To decide"),
    "admin": ("账户管理", "Accounts"),
    "delegation": ("事项下放", "Delegation"),
    "audit": ("日志审计", "Audit"),
    "node": ("节点", "Node"),
    "tier.village": ("村(社区)便民服务中心", "Village service center"),
    "tier.town": ("镇(街道)便民服务中心", "Town service center"),
    "tier.city": ("市民中心", "City service center"),
    "sync": ("同步", "Sync"),
    "sync.last_ok": ("上次同步成功", "Last successful sync"),
    "sync.never": ("尚未同步", "never"),
    "sync.waiting_up": ("待上传记录", "Records waiting to go up"),
    "sync.waiting_down": ("待下载记录", "Records waiting to come down"),
    "sync.unknown": ("未知", "unknown"),
    "sync.offline_ok": (
        "离线时可照常受理,联网后自动同步。",
        "Intake works offline; records sync when the link is back.",
    ),
    "sync.last_error": ("上次同步错误", "Last sync error"),
    "today": ("今日受理", "Taken in today"),
    "open": ("在办", "Open"),
    "overdue": ("已超期", "Overdue"),
    "search": ("搜索", "Search"),
    "search.hint": ("办件编号、证件号码或姓名(可输入部分姓名)", "Case number, ID number or (part of) a name"),
    "search.none": ("没有找到办件", "No cases found"),
    "recent": ("最近受理", "Recent intake"),
    "item": ("事项", "Item"),
    "item.code": ("事项编码", "Item code"),
    "department": ("部门", "Department"),
    "mode": ("办理方式", "Mode"),
    "mode.direct": ("直接办", "direct"),
    "mode.proxy": ("代收代办", "proxy"),
    "mode.same_power": ("同权办", "same power"),
    "limit": ("承诺时限", "Time limit"),
    "limit.days": ("{n}个工作日", "{n} working days"),
    "limit.now": ("即办", "on the spot"),
    "materials": ("申请材料", "Materials"),
    "material.required": ("必需", "required"),
    "material.optional": ("可选", "optional"),
    "material.original": ("原件", "original"),
    "material.copy": ("复印件", "copy"),
    "decider": ("决定节点", "Decided at"),
    "decider.here": ("本节点", "this node"),
    "grant.stale": ("授权已过期,仍可受理,办件将被标记", "Grant expired: intake goes on, the case is flagged"),
    "applicant": ("申请人", "Applicant"),
    "name": ("姓名", "Name"),
    "doc_type": ("证件类型", "ID document"),
    "doc_no": ("证件号码", "ID number"),
    "phone": ("联系电话", "Phone"),
    "notes": ("备注", "Notes"),
    "accept": ("受理并出具回执", "Accept and print receipt"),
    "print_notice": ("打印一次性告知单", "Print one-time notice"),
    "duplicate.warn": (
        "该申请人已有同一事项的在办件:",
        "This applicant already has an open case for this item:",
    ),
    "duplicate.confirm": ("仍要受理新的办件", "Take in a new case anyway"),
    "choose_item": ("请选择事项", "Choose an item"),
    "receipt": ("受理回执", "Receipt"),
    "receipt.title": ("受理回执", "Acknowledgement of receipt"),
    "receipt.body": (
        "您的申请材料已收到,经审查符合受理条件,现予受理。请凭本回执查询办理进度或领取结果。",
        "Your application has been received and accepted. Keep this receipt to check progress"
        " or collect the result.",
    ),
    "receipt.print": ("打印", "Print"),
    "result": ("办理结果告知书", "Notice of decision"),
    "result.decider": ("决定机关", "Decided by"),
    "result.decision": ("办理结果", "Decision"),
    "result.at": ("决定时间", "Decided on"),
    "result.approve": (
        "经审查，您的申请符合规定，准予办理。请按约定方式领取办理结果。",
        "Your application meets the requirements and is approved. Collect the result as agreed.",
    ),
    "result.reject": (
        "经审查，您的申请不予办理，理由如下。如有异议，可依法申请行政复议或提起行政诉讼。",
        "Your application is not approved, for the reason below. You may seek administrative"
        " review or bring a lawsuit as the law provides.",
    ),
    "case_no": ("办件编号", "Case number"),
    "received": ("受理时间", "Received"),
    "deadline": ("办结期限", "Due by"),
    "deadline.estimated": (
        "(该年度节假日安排未发布,按周一至周五估算)",
        "(holidays of that year not yet published; Mon–Fri assumed)",
    ),
    "calendar.held": ("工作日历", "Working-day calendar"),
    "calendar.builtin": ("内置", "built in"),
    "calendar.release": ("市中心发布第{v}版", "central release v{v}"),
    "calendar.other": (
        "(其余年份按周一至周五计算,相关期限标注为估算)",
        "(other years count Monday to Friday; their deadlines are marked as estimates)",
    ),
    "clerk": ("受理人", "Clerk"),
    "state": ("状态", "State"),
    "flags": ("标记", "Flags"),
    "events": ("办理过程", "History"),
    "event.refused": ("未生效", "not applied"),
    "event.quarantined": ("已隔离(证书吊销后签署)", "quarantined (signed after a revocation)"),
    "case.void": ("作废", "void"),
    "case.quarantined": (
        "此件作废:受理记录是用已被吊销的节点密钥在吊销截止点之后签署的(可能是密钥被盗后伪造),"
        "不计入任何待办、统计和在办清单,也不能再办理。记录留作证据,请报告市中心核查。",
        "This case is void: its intake was signed with the node's key after the key's revocation"
        " cut-off (a stolen key, perhaps). It is in no queue, count or list of open cases, and no"
        " step can be taken on it. The records are kept as evidence; report it to the city center.",
    ),
    "steps": ("办理", "Actions"),
    "reason": ("理由/说明", "Reason / note"),
    "missing_list": ("需补正的材料(每行一项)", "Materials to supply (one per line)"),
    "delivery": ("送达方式", "Delivery"),
    "rating": ("好差评", "Rating"),
    "comment": ("评价意见", "Comment"),
    "notice.title": ("一次性告知单", "One-time notice of missing materials"),
    "notice.body": (
        "您申请的事项尚缺以下材料,请备齐后再来办理。本告知一次性列明全部所需材料。",
        "The following materials are still missing. Bring all of them next time; this notice lists"
        " everything that is needed.",
    ),
    "notice.received": ("已收到的材料", "Materials received"),
    "notice.missing": ("尚缺材料", "Materials missing"),
    "queue.empty": ("没有待审批的办件", "Nothing waits for a decision"),
    "from_node": ("受理节点", "Taken in at"),
    "accounts": ("账户", "Accounts"),
    "roles": ("角色", "Roles"),
    "role.clerk": ("受理员(全岗通)", "clerk"),
    "role.approver": ("审批员", "approver"),
    "role.admin": ("节点管理员", "node admin"),
    "role.auditor": ("审计员", "auditor"),
    "display_name": ("显示名", "Display name"),
    "active": ("启用", "active"),
    "disabled": ("已停用", "disabled"),
    "enable": ("启用", "Enable"),
    "disable": ("停用", "Disable"),
    "login.backed_off": (
        "登录受限（{n} 个地址多次输错密码）",
        "Logins held back ({n} address(es) with wrong passwords)",
    ),
    "login.unlock": ("解除登录限制", "Lift the login limit"),
    "add": ("添加", "Add"),
    "devices": ("自助设备令牌", "Device tokens"),
    "device.name": ("设备名称", "Device name"),
    "device.token_once": ("请立即抄录此令牌,它只显示一次:", "Copy this token now; it is shown only once:"),
    "delegation.mine": ("本节点持有的授权", "Grants held by this node"),
    "delegation.issued": ("已下放的授权", "Grants issued"),
    "delegation.to": ("下放给", "Delegate to"),
    "delegation.valid_days": ("有效天数", "Valid days"),
    "delegation.none": ("没有可下放的授权", "No grant can be passed down"),
    "valid_until": ("有效期至", "Valid until"),
    "revoked": ("已撤销", "revoked"),
    "revoke": ("撤销", "Revoke"),
    "audit.verify": ("校验本节点日志", "Verify this node's log"),
    "audit.ok": (
        "校验通过:{n}条记录,签名、链和投影均一致。",
        "Verified: {n} records; signatures, chains and projections agree.",
    ),
    "audit.faults": ("校验发现问题", "Verification found faults"),
    "audit.rejected": ("被拒收的记录", "Rejected records"),
    "banner.E_CATALOG_EXPIRED": (
        "事项清单已过期,请尽快联网同步;仍可受理,办件将被标记。",
        "The catalog has expired; sync soon. Intake goes on and cases are flagged.",
    ),
    "banner.E_GRANT_EXPIRED": (
        "本节点的事项授权已过期,请尽快联网同步;仍可受理,办件将被标记。",
        "This node's grants have expired; sync soon. Intake goes on and cases are flagged.",
    ),
    "banner.E_ITEM_UNKNOWN": ("尚未收到事项清单,请先同步。", "No catalog yet: sync first."),
    "banner.E_GRANT_ITEM": ("本节点尚未获得任何事项授权。", "This node holds no grant yet."),
    "banner.E_HEARTBEAT_STALE": (
        "中心的签名心跳已过期:本节点可能缺少最新的清单、授权或吊销信息。可继续受理,办件将被标记。",
        "Central's signed heartbeat has expired: this node may lack the newest catalog, grants or"
        " revocations. Intake goes on; cases are flagged.",
    ),
    "banner.E_CLOCK_BEHIND": (
        "本机时钟比中心心跳时间慢了5分钟以上,请校准时钟。",
        "This machine's clock is more than 5 minutes behind central's heartbeat: set the clock.",
    ),
    "banner.fork.own": (
        "本节点的签名记录链出现分叉：签名密钥可能已被盗用，请立即联系市级平台。本节点暂停签发新记录。",
        "This node's chain of signed records has forked: its signing key may have been stolen."
        " Contact the city platform at once. This node signs no new records meanwhile.",
    ),
    "banner.fork.root": (
        "市级平台的记录链出现分叉：本节点不再接收市级平台之后的记录，请立即联系市级平台。",
        "Central's chain of records has forked: this node takes nothing more from central past"
        " the fork. Contact the city platform at once.",
    ),
    "banner.fork.child": (
        "下级节点的签名记录链出现分叉（其密钥可能已被盗用）：已暂停接收该节点之后的记录，请联系市级平台处理。",
        "A child node's chain of signed records has forked (its key may have been stolen): its"
        " later records are held off. Contact the city platform to settle it.",
    ),
    "banner.fork.other": (
        "其他节点的签名记录链出现分叉（其密钥可能已被盗用）：已暂停接收该节点之后的记录，等待市级平台处理。",
        "Another node's chain of signed records has forked (its key may have been stolen): its"
        " later records are held off until the city platform decides.",
    ),
    "banner.E_CHAIN_BEHIND": (
        "本节点数据库比已签发的记录旧（可能从旧备份恢复）：请先联网同步，取回本节点已签发的记录；同步前不能受理或办理。",
        "This node's store is older than the records it has signed (restored from an older copy?):"
        " sync first to get its own records back. Until then it cannot take in or act on cases.",
    ),
}

# The words of the case lifecycle are core's, one table each (core.cases).
TEXT.update({f"state.{state.value}": label for state, label in STATE_LABELS.items()})
TEXT.update({f"event.{event.value}": label for event, label in EVENT_LABELS.items()})
TEXT.update({f"delivery.{way.value}": label for way, label in DELIVERY_LABELS.items()})
TEXT.update({f"rating.{rating.value}": label for rating, label in RATING_LABELS.items()})

TEXTS = Texts(SHARED, TEXT)
