"""The texts of the federation's error codes (``E_PEER_…``, :mod:`core.federation`), in Chinese
and English, for the operator who manages agreements with other cities and the clerk whose
window refuses a foreign record. :mod:`core.code_texts` holds them with every other code's.
"""

from __future__ import annotations

from core.codes import ErrorCode

PEER_TEXTS: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.PEER_UNKNOWN: (
        "本市与该城市没有互认协议，不受理其记录",
        "This city has no agreement with that city: its records are not accepted",
    ),
    ErrorCode.PEER_SCOPE: (
        "该城市的这项操作不在互认范围内（事项、办理方式或角色未获认可）",
        "That city's act is outside the agreed scope (the item, mode or role was not given)",
    ),
    ErrorCode.PEER_OWN_ITEM: (
        "外市不能对本市的事项作出决定",
        "Another city may not decide one of this city's own items",
    ),
    ErrorCode.PEER_TRANSITIVE: (
        "该记录属于第三个城市，经其他城市转来，互认不可传递，已拒绝",
        "The record is a third city's, passed on by a peer: trust is never transitive",
    ),
    ErrorCode.PEER_REPLAY: (
        "该跨市消息已收到过，重复的消息不再受理",
        "This cross-city message was received before: a replay is refused",
    ),
    ErrorCode.PEER_MISADDRESSED: (
        "该跨市消息是发给另一个城市的，本市不受理",
        "This cross-city message is addressed to another city",
    ),
    ErrorCode.PEER_ROLLBACK: (
        "互认证书的序号不大于已有的，可能是旧证书被重放，已拒绝",
        "The cross-certification is not newer than the one held: rollback refused",
    ),
    ErrorCode.PEER_EXPIRED: (
        "与该城市的互认证书已过期，不能受理新的跨市办件；已开始的办件可以办完",
        "The cross-certification of that city has expired: new cross-city cases are refused,"
        " cases begun while it held finish",
    ),
    ErrorCode.PEER_REVOKED: (
        "与该城市的互认已撤销，不再受理其记录",
        "The agreement with that city has been revoked: its records are refused",
    ),
    ErrorCode.PEER_NODE_REVOKED: (
        "签发该记录的外市节点证书已被其所在城市吊销",
        "The other city's node that signed this has had its certificate revoked",
    ),
    ErrorCode.PEER_ROOT_CHANGED: (
        "该城市的根密钥与互认协议中的不同；须重新核对指纹并确认新的协议",
        "That city's root key differs from the one agreed: compare the fingerprint again and"
        " confirm a new agreement",
    ),
    ErrorCode.PEER_FINGERPRINT: (
        "输入的指纹与对方根密钥的指纹不符，请与对方管理员重新核对",
        "The fingerprint typed does not match the peer's root key: compare it again with the peer's operator",
    ),
    ErrorCode.PEER_CHAIN: (
        "对方城市的记录无法验证：其签名未能追溯到协议约定的对方根密钥",
        "The other city's record cannot be verified: its signature does not lead to the agreed root key",
    ),
    ErrorCode.PEER_CASE: (
        "对方城市发来的办件步骤与本市的办件对不上（办件不存在、不是跨市办件或内容不一致）",
        "A step sent by the other city does not match a cross-city case of ours"
        " (unknown, not crossing, or different)",
    ),
    ErrorCode.PART_OPEN: (
        "多地联办的各部分尚未全部办结，不能送达；请待各城市办结后再送达",
        "Not every part of this joint application is decided yet:"
        " deliver once every city has decided its part",
    ),
}
