"""The texts for people of each error code (:mod:`core.codes`), in Chinese and English.

Each is written for the person who must act — a clerk at the window or an operator at a
terminal: what is wrong and what to do. A test checks that every code has both.
"""

from __future__ import annotations

from core.code_texts_federation import PEER_TEXTS
from core.codes import ErrorCode

# (Chinese, English). Written for the person who must act: what is wrong, what to do.
TEXTS: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.ID_TYPE_UNKNOWN: ("不支持的证件类型", "This type of identity document is not supported"),
    ErrorCode.ID_FORMAT: (
        "证件号码格式不正确，请核对位数和字符",
        "The document number has the wrong length or characters",
    ),
    ErrorCode.ID_CHECKSUM: (
        "证件号码校验位不正确，请核对是否录入有误",
        "The document number's check digit is wrong: please re-check the number",
    ),
    ErrorCode.ID_BIRTHDATE: (
        "证件号码中的出生日期不正确",
        "The birth date in the document number is not possible",
    ),
    ErrorCode.ID_REGION: (
        "证件号码中的地区代码不正确",
        "The region code in the document number is not valid",
    ),
    ErrorCode.ADMIN_CODE: ("行政区划代码不正确", "The administrative-division code is not valid"),
    ErrorCode.TIER_MISMATCH: (
        "层级与行政区划代码不符",
        "The tier does not match the administrative-division code",
    ),
    ErrorCode.PHONE_INVALID: ("联系电话格式不正确", "The phone number is not valid"),
    ErrorCode.FIELD_INVALID: ("填写的内容不符合要求", "A field's value is not acceptable"),
    ErrorCode.CATALOG_INVALID: ("事项清单数据不正确", "The catalog data is not valid"),
    ErrorCode.ITEM_UNKNOWN: ("事项清单中没有该事项", "The item is not in the catalog"),
    ErrorCode.CALENDAR_INVALID: ("工作日历数据不正确", "The working-day calendar data is not valid"),
    ErrorCode.CASE_TRANSITION: (
        "办件当前状态下不能进行此操作",
        "This action is not possible in the case's current state",
    ),
    ErrorCode.GRANT_INVALID: ("授权记录不正确", "The grant is not valid"),
    ErrorCode.GRANT_WIDENS: (
        "下级授权超出了上级授权的范围",
        "The sub-grant is wider than the grant it derives from",
    ),
    ErrorCode.GRANT_EXPIRED: ("授权已过期", "The grant has expired"),
    ErrorCode.GRANT_NOT_YET_VALID: ("授权尚未生效", "The grant is not valid yet"),
    ErrorCode.GRANT_REVOKED: ("授权已被撤销", "The grant has been revoked"),
    ErrorCode.GRANT_CHAIN_BROKEN: (
        "授权链不完整或无法验证",
        "The grant chain is incomplete or cannot be verified",
    ),
    ErrorCode.GRANT_AUDIENCE: (
        "授权对象不在授权方的管辖范围内",
        "The grantee is not inside the granter's area",
    ),
    ErrorCode.GRANT_DEPTH: ("该授权不允许再向下授权", "The grant does not allow further delegation"),
    ErrorCode.GRANT_ITEM: ("本中心未获授权办理该事项", "This center is not granted this item"),
    ErrorCode.GRANT_MODE: (
        "本中心对该事项的授权方式不允许此操作",
        "This center's grant for the item does not allow this mode",
    ),
    ErrorCode.CERT_UNKNOWN: ("找不到该节点的证书", "No certificate is held for this node"),
    ErrorCode.CERT_REVOKED: ("该节点的证书已被吊销", "The node's certificate has been revoked"),
    ErrorCode.CERT_EXPIRED: ("该节点的证书已过期", "The node's certificate has expired"),
    ErrorCode.CERT_NOT_YET_VALID: ("该节点的证书尚未生效", "The node's certificate is not valid yet"),
    ErrorCode.NOT_AUTHORIZED: ("无权进行此操作", "You are not allowed to do this"),
    ErrorCode.GRANT_CATALOG: (
        "授权依据的事项清单版本尚未收到",
        "The catalog release the grant refers to is not held yet",
    ),
    ErrorCode.KEY_ROLE: (
        "中心的这把密钥无权签署此类记录",
        "This key of central is not allowed to sign records of this kind",
    ),
    ErrorCode.KEY_RETIRED: (
        "签名密钥已被轮换停用，此后的记录不予接受",
        "The signing key was rotated out; records after its retirement are refused",
    ),
    ErrorCode.KEY_MISSING: (
        "本机没有所需的中心密钥文件",
        "The central key file needed for this is not on this machine",
    ),
    ErrorCode.ROOT_PROOF: (
        "新根密钥的持有证明无效",
        "The new root key's proof of possession is not valid",
    ),
    ErrorCode.HEARTBEAT_STALE: (
        "较长时间未收到中心的签名心跳，信息可能已过时",
        "No current signed heartbeat from central; what this node holds may be out of date",
    ),
    ErrorCode.CLOCK_BEHIND: (
        "本机时钟落后于中心心跳时间，请校准时钟",
        "This machine's clock is behind central's heartbeat; set the clock",
    ),
    ErrorCode.BACKDATED: (
        "记录的签署时间早于同一节点的前一条记录，或早于上级最近一次回执超过允许的离线天数：可能被倒签",
        "The record is dated before its node's previous record, or before the parent's newest receipt"
        " for the node by more than the days a node may stay offline: it may be backdated",
    ),
    ErrorCode.RECORD_TOO_LARGE: ("记录超过大小上限", "The record is larger than allowed"),
    ErrorCode.RECORD_MALFORMED: ("记录格式损坏", "The record is malformed"),
    ErrorCode.CBOR_NONCANONICAL: ("记录不是规范编码", "The record is not canonically encoded"),
    ErrorCode.CBOR_DUPLICATE_KEY: ("记录中存在重复字段", "The record contains a duplicate key"),
    ErrorCode.CBOR_TOO_DEEP: ("记录嵌套层数过多", "The record is nested too deeply"),
    ErrorCode.CBOR_FORBIDDEN_TYPE: (
        "记录中含有不允许的数据类型",
        "The record contains a forbidden data type",
    ),
    ErrorCode.KEY_UNKNOWN: (
        "尚未收到签名节点的证书，记录暂存待验",
        "The signer's certificate is not held yet; the record is held for later",
    ),
    ErrorCode.SIGNATURE_INVALID: (
        "签名无效，记录可能被篡改",
        "The signature is invalid: the record may have been altered",
    ),
    ErrorCode.NET_MISMATCH: ("记录属于其他政务服务网络", "The record belongs to another service network"),
    ErrorCode.VERSION_UNSUPPORTED: (
        "记录版本不受支持，请升级软件",
        "The record version is not supported: upgrade the software",
    ),
    ErrorCode.KIND_UNKNOWN: ("未知的记录类型", "Unknown record kind"),
    ErrorCode.SCHEMA: ("记录内容不符合格式要求", "The record's content does not match its schema"),
    ErrorCode.CHAIN_GAP: (
        "记录序号不连续，等待缺失的记录",
        "Records are missing before this one; it is held until they arrive",
    ),
    ErrorCode.CHAIN_PREV: ("记录与前一条记录不衔接", "The record does not link to its predecessor"),
    ErrorCode.CHAIN_FORK: (
        "同一节点出现两条同序号的不同记录（分叉）",
        "The node signed two different records with the same number (fork)",
    ),
    ErrorCode.CHAIN_BEHIND: (
        "本节点数据库比已签发的记录旧（可能从旧备份恢复）：请先联网同步，取回本节点已签发的记录",
        "This node's store is older than the records it has signed (restored from an older copy?):"
        " sync first to get this node's own records back",
    ),
    ErrorCode.AUTHORITY: ("签发方无权签发此类记录", "The signer may not issue records of this kind"),
    ErrorCode.CATALOG_ROLLBACK: (
        "事项清单版本回退，已拒绝",
        "The catalog release is older than the one held: rollback refused",
    ),
    ErrorCode.CATALOG_VERSION_GAP: ("事项清单版本不连续", "The catalog release skips a version"),
    ErrorCode.CALENDAR_ROLLBACK: (
        "工作日历版本回退，已拒绝",
        "The calendar release is not newer than the one held: rollback refused",
    ),
    ErrorCode.CALENDAR_VERSION_GAP: (
        "工作日历版本不连续，已拒绝",
        "The calendar release skips a version",
    ),
    ErrorCode.KEY_FILE_MISSING: ("找不到密钥文件", "The key file is missing"),
    ErrorCode.KEY_FILE_EXISTS: (
        "密钥文件已存在，不会覆盖",
        "The key file exists already and is never overwritten",
    ),
    ErrorCode.KEY_FILE_MODE: (
        "密钥文件权限过宽，应为 0600",
        "The key file's permissions are too open: it must be mode 0600",
    ),
    ErrorCode.KEY_FILE_FORMAT: ("密钥文件格式不正确", "The key file's format is not valid"),
    ErrorCode.STORE_TOO_NEW: (
        "数据库版本比本软件新，请升级软件",
        "The database is newer than this software: upgrade the software",
    ),
    ErrorCode.STORE_CORRUPT: ("数据库文件损坏", "The database file is damaged"),
    ErrorCode.STORE_APPEND_ONLY: (
        "记录只能追加，不能修改或删除",
        "Records can only be appended, never changed or deleted",
    ),
    ErrorCode.STORE_MISSING: ("找不到数据库文件", "The database file is missing"),
    ErrorCode.STORE_BUSY: (
        "数据库正忙（另一个程序正在写入），请稍候再试；刚才的操作没有保存",
        "The store is busy (another program is writing to it): try again in a moment; nothing was saved",
    ),
    ErrorCode.STORE_FULL: (
        "磁盘已满，无法保存；请联系信息技术人员清理磁盘，已保存的数据不受影响",
        "The disk is full and nothing could be saved; ask IT to free disk space (what is stored is intact)",
    ),
    ErrorCode.STORE_READONLY: (
        "数据库文件只能读取、不能写入，无法保存；请联系信息技术人员检查文件权限和磁盘",
        "The store can be read but not written, so nothing was saved; ask IT to check the file and the disk",
    ),
    ErrorCode.STORE_IO: (
        "读写数据库文件时出错（可能是磁盘故障），请联系信息技术人员",
        "The store's file could not be read or written (a disk fault?); ask IT",
    ),
    ErrorCode.STORE_CONFLICT: (
        "与已保存的数据冲突，没有保存；请刷新页面后再试",
        "This conflicts with what is stored and was not saved; reload and try again",
    ),
    ErrorCode.STORE_FAULT: (
        "数据库操作出错（软件故障），没有保存；请把错误代码告知技术支持",
        "The store refused an operation of this software and nothing was saved; report the code to support",
    ),
    ErrorCode.CENTRAL_REBUILDING: (
        "市级平台正在从网络重建数据库，重建完成前不签发任何记录；请等待 tongban central rebuild 完成",
        "Central is rebuilding its store from the network and signs nothing until it has finished:"
        " wait for tongban central rebuild to finish",
    ),
    ErrorCode.ENROLL_REQUEST: ("入网申请格式不正确", "The enrollment request is malformed"),
    ErrorCode.ENROLL_POP: (
        "入网申请的签名与申请中的密钥不符",
        "The enrollment request is not signed by the key it names",
    ),
    ErrorCode.ENROLL_PARENT: ("上级节点不正确或尚未入网", "The parent node is wrong or not enrolled"),
    ErrorCode.ENROLL_TIER: ("节点层级与代码不符", "The node's tier does not match its code"),
    ErrorCode.ENROLL_CODE_TAKEN: ("该代码已有有效证书", "A live certificate already holds this code"),
    ErrorCode.ENROLL_BUNDLE: (
        "入网包不正确或不属于本节点",
        "The enrollment bundle is not valid or not for this node",
    ),
    ErrorCode.ENROLL_ANCHOR: (
        "信任锚指纹不符，请与市中心核对",
        "The trust-anchor fingerprint does not match: check it with the city center",
    ),
    ErrorCode.ENROLL_TOKEN_MISSING: (
        "入网申请中没有入网令牌：请向市中心索取该节点代码的令牌，再用它重新生成申请",
        "The enrollment request carries no token: get a token for the node's code from central"
        " and remake the request with it",
    ),
    ErrorCode.ENROLL_TOKEN: (
        "入网令牌不正确，不是市中心签发的令牌",
        "The enrollment token is not one central issued",
    ),
    ErrorCode.ENROLL_TOKEN_USED: (
        "入网令牌已经用过，每个令牌只能入网一次；请向市中心重新索取",
        "The enrollment token was used already (each enrolls once): ask central for a new one",
    ),
    ErrorCode.ENROLL_TOKEN_EXPIRED: (
        "入网令牌已过期，请向市中心重新索取",
        "The enrollment token has expired: ask central for a new one",
    ),
    ErrorCode.ENROLL_TOKEN_CODE: (
        "入网令牌是为其他节点代码签发的",
        "The enrollment token was issued for another node's code",
    ),
    ErrorCode.ALREADY_ENROLLED: ("本节点已入网", "This node is enrolled already"),
    ErrorCode.NOT_ENROLLED: ("本节点尚未入网", "This node is not enrolled yet"),
    ErrorCode.ENROLL_ITEMS: (
        "事项不属于该部门，或已由其他部门办理",
        "An item is not this department's in the catalog, or another department decides it",
    ),
    ErrorCode.NOT_INITIALIZED: (
        "目录不是已初始化的节点或中心",
        "The directory is not an initialized node or central",
    ),
    ErrorCode.DIR_NOT_EMPTY: ("目录已存在且不为空", "The directory exists and is not empty"),
    ErrorCode.CONFIG: ("配置不正确", "The configuration is not valid"),
    ErrorCode.VERIFY_FAILED: ("日志校验发现问题", "Log verification found faults"),
    ErrorCode.MATERIALS_MISSING: (
        "必需材料不齐，请打印一次性告知单交申请人",
        "Required materials are missing; print the one-time notice for the applicant",
    ),
    ErrorCode.FIELD_REQUIRED: ("必填项未填写", "A required field is empty"),
    ErrorCode.FIELD_TOO_LONG: ("填写内容过长", "A field is too long"),
    ErrorCode.CASE_UNKNOWN: ("找不到该办件", "No such case"),
    ErrorCode.NOT_DECIDER: (
        "本节点不是该办件的决定节点",
        "This node is not the deciding node of the case",
    ),
    ErrorCode.CASE_DUPLICATE: (
        "该申请人已有同一事项的在办件，确认后可再受理",
        "The applicant already has an open case for this item; confirm to take in another",
    ),
    ErrorCode.CATALOG_EXPIRED: (
        "事项清单已过期，请联网同步最新版本；受理照常进行",
        "The catalog release has expired; sync to get the newest one — intake goes on",
    ),
    ErrorCode.LOGIN_FAILED: ("用户名或密码错误", "Wrong user name or password"),
    ErrorCode.LOGIN_THROTTLED: (
        "登录失败次数过多，请稍后再试",
        "Too many failed logins; wait a moment and try again",
    ),
    ErrorCode.SESSION_EXPIRED: ("登录已过期，请重新登录", "Your session has expired; log in again"),
    ErrorCode.CSRF: (
        "表单已失效，请刷新页面后重新提交",
        "The form has expired; reload the page and submit again",
    ),
    ErrorCode.ROLE: ("您的角色无权执行此操作", "Your role may not do this"),
    ErrorCode.TOKEN_INVALID: ("设备令牌无效或已停用", "The device token is not valid or was disabled"),
    ErrorCode.ACCOUNT_DISABLED: (
        "账户已停用，请联系节点管理员",
        "The account is disabled; ask the node admin",
    ),
    ErrorCode.ACCOUNT_EXISTS: ("该用户名已存在", "That user name is taken"),
    ErrorCode.ACCOUNT_UNKNOWN: ("没有该账户", "No such account"),
    ErrorCode.PASSWORD_WEAK: (
        "密码太短：至少10个字符",
        "The password is too short: at least 10 characters",
    ),
    ErrorCode.NOT_FOUND: ("页面不存在", "No such page"),
    ErrorCode.REQUEST_TOO_LARGE: ("提交的内容过大", "The request is too large"),
    ErrorCode.REQUEST_JSON: (
        "提交的数据不是有效的 JSON 对象，请检查后重新提交",
        "The body is not a valid JSON object: UTF-8, each key once, not nested too deeply",
    ),
    ErrorCode.REQUEST_TYPE: (
        "提交的数据格式不受支持，请以 application/json 提交",
        "The request's Content-Type is not supported: send application/json",
    ),
    ErrorCode.INTERNAL: (
        "系统内部错误，已记录；请把错误编号告知技术支持",
        "An internal error occurred and was logged; give the error reference to support",
    ),
    ErrorCode.DRAFT_NONE: (
        "没有事项清单草稿，请先导入文件或从当前版本新建草稿",
        "There is no catalog draft: import a file or start one from the current release",
    ),
    ErrorCode.DRAFT_STALE: (
        "确认后草稿或当前版本已有变化，请重新核对差异后再发布",
        "The draft or the current release changed after you confirmed; check the differences again",
    ),
    ErrorCode.SYNC_PROTOCOL: ("同步消息格式错误", "A sync message is malformed"),
    ErrorCode.SYNC_VERSION: (
        "两端软件的同步协议版本不兼容，请升级",
        "The two ends share no sync protocol version; upgrade one of them",
    ),
    ErrorCode.SYNC_TOO_LARGE: ("同步消息过大", "A sync message is too large"),
    ErrorCode.SYNC_PEER_UNKNOWN: (
        "对端节点未登记或密钥不符",
        "The peer is not enrolled or its key does not match",
    ),
    ErrorCode.SYNC_PEER_REVOKED: ("对端节点的证书已吊销", "The peer's certificate has been revoked"),
    ErrorCode.SYNC_NOT_CHILD: ("对端节点不是本节点的下级", "The peer is not a child of this node"),
    ErrorCode.SYNC_CREDIT: ("对端违反了流量控制", "The peer sent more than it was allowed"),
    ErrorCode.SYNC_TIMEOUT: ("同步超时", "The sync timed out"),
    ErrorCode.SYNC_UNREACHABLE: (
        "无法连接上级节点，本节点继续离线工作",
        "The parent cannot be reached; this node keeps working offline",
    ),
    ErrorCode.SYNC_BUSY: (
        "该节点已有一个同步会话正在进行",
        "This node already has a sync session in progress",
    ),
    ErrorCode.SYNC_FLOOD: (
        "本次同步送来的记录被拒收过多，上级已中止同步；请信息技术人员检查该节点的软件和密钥是否被盗用",
        "Too many of the records this session sent were refused, so the parent ended it; IT should"
        " check the node's software, and whether its key was stolen",
    ),
    ErrorCode.DEPARTMENT_ITEM: (
        "该部门不办理此事项，不能作出决定",
        "This department does not decide the case's item",
    ),
    ErrorCode.DEPARTMENT_USER: (
        "消息的发送账户与签名部门不符",
        "The message was sent by another department's broker account than the one that signed it",
    ),
    ErrorCode.RECORD_REPLAYED: (
        "该记录已收到过，不再重复受理",
        "This record is held already; a replay changes nothing",
    ),
    ErrorCode.BROKER_UNREACHABLE: (
        "无法连接消息服务，稍后自动重试",
        "The message broker cannot be reached; it is tried again shortly",
    ),
    ErrorCode.BROKER_UNROUTABLE: (
        "消息服务中没有该部门的队列，请检查部门配置",
        "The broker has no queue for this department: check its set-up",
    ),
    ErrorCode.BROKER_REFUSED: (
        "消息服务拒绝了此操作（账户权限或参数不符）",
        "The broker refused this (account permissions or arguments)",
    ),
    ErrorCode.BROKER_TIMEOUT: ("调用中心服务超时", "The call to central timed out"),
    ErrorCode.DRAFT_REPLACE: (
        "替换整个草稿会删除文件中没有的事项，请核对要删除的事项并确认",
        "Replacing the whole draft deletes the items the file does not have: check them and confirm",
    ),
    ErrorCode.READER_FAILED: ("读卡失败", "The card could not be read"),
    ErrorCode.READER_EMPTY: ("读卡器上没有证件", "There is no card on the reader"),
    ErrorCode.READER_NONE: ("本机未配置身份证读卡器", "No ID card reader is configured on this machine"),
    ErrorCode.CASE_NAME_MISMATCH: (
        "该证件号码以前登记的是另一个姓名，请核对证件；确认无误后可继续受理",
        "This ID number was registered under another name before: check the document, then confirm",
    ),
    ErrorCode.CASE_RATED: (
        "该办件已评价，每件只能评价一次",
        "This case has been rated already; a case is rated once",
    ),
    ErrorCode.PROVISION_BUSY: (
        "另一次部署正在对这份组织架构运行，请等它结束后再试",
        "Another provisioning run of this org tree is in progress; try again when it has finished",
    ),
    ErrorCode.FILE_TYPE: (
        "只能上传 JPEG、PNG 图片或 PDF 文件",
        "Only JPEG or PNG images and PDF files can be taken in",
    ),
    ErrorCode.FILE_TYPE_MISMATCH: (
        "文件内容与文件名所示的类型不符，请重新扫描或拍照",
        "The file's content is not the type its name says: scan or photograph the page again",
    ),
    ErrorCode.FILE_BOMB: (
        "图片像素过多，无法处理，请降低扫描分辨率后重试",
        "The image has too many pixels to process: scan at a lower resolution and try again",
    ),
    ErrorCode.FILE_DAMAGED: (
        "文件已损坏或不完整，请重新扫描或拍照",
        "The file is damaged or incomplete: scan or photograph the page again",
    ),
    ErrorCode.FILE_TOO_LARGE: (
        "文件超过大小上限，请降低扫描分辨率或分页扫描",
        "The file is larger than allowed: scan at a lower resolution or page by page",
    ),
    ErrorCode.FILE_CASE_TOO_LARGE: (
        "本办件的材料文件总量超过上限",
        "The files of this case (or of this one step) are more than allowed in total",
    ),
    ErrorCode.FILE_HASH: (
        "文件内容与记录中的校验值不符，文件可能已损坏",
        "The file's content does not match its hash: it may be damaged",
    ),
    ErrorCode.FILE_OFFSET: (
        "文件续传位置与已收到的部分不符",
        "The file chunk does not continue where the part already received ends",
    ),
    ErrorCode.FILE_UNREFERENCED: (
        "该文件不属于本节点持有的任何记录，不予接收",
        "No record held here refers to this file: it is not taken",
    ),
    ErrorCode.FILE_SCOPE: (
        "该文件不属于此办件或不在对方的管辖范围内",
        "The file does not belong to this case, or to a case of the sender's area",
    ),
    ErrorCode.FILE_FLOOD: (
        "本次同步收到的文件过多，其余的下次再传",
        "Too many files in one sync session: the rest wait for the next one",
    ),
    ErrorCode.FILE_BUDGET: (
        "本机材料文件存储空间已满，请联系运维人员",
        "The file store's disk budget is used up: call the operator",
    ),
    ErrorCode.FILE_MISSING: (
        "本机尚未收到该文件（可能仍在同步中）",
        "This file is not held here (yet): it may still be on its way",
    ),
    ErrorCode.FILE_FORBIDDEN: (
        "无权查看此办件的材料文件",
        "You are not allowed to see the files of this case",
    ),
}
TEXTS.update(PEER_TEXTS)


def error_text(code: ErrorCode, lang: str = "zh") -> str:
    """The human text for ``code`` in ``lang`` ("zh" or "en")."""
    zh, en = TEXTS[code]
    return en if lang == "en" else zh


def code_text(code: str, lang: str = "zh") -> str:
    """The text of the code named ``code`` (as stored), or "" for a code this software does not know."""
    try:
        return error_text(ErrorCode(code), lang)
    except ValueError:
        return ""
