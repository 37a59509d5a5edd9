"""Hangup causes as FreeSWITCH names and numbers them, and their SIP mappings.

The numbers are ``switch_call_cause_t`` values (Q.850 codes below 128,
FreeSWITCH-specific codes above). The SIP tables follow ``mod_sofia``:
``hangup_cause_to_sip`` for the status a hanging-up leg answers an INVITE
with, and ``sofia_glue_sip_cause_to_freeswitch`` for the cause a leg takes
from a final SIP response.
"""

from __future__ import annotations

CAUSE_CODES: dict[str, int] = {
    "UNSPECIFIED": 0,
    "UNALLOCATED_NUMBER": 1,
    "NO_ROUTE_TRANSIT_NET": 2,
    "NO_ROUTE_DESTINATION": 3,
    "CHANNEL_UNACCEPTABLE": 6,
    "CALL_AWARDED_DELIVERED": 7,
    "NORMAL_CLEARING": 16,
    "USER_BUSY": 17,
    "NO_USER_RESPONSE": 18,
    "NO_ANSWER": 19,
    "SUBSCRIBER_ABSENT": 20,
    "CALL_REJECTED": 21,
    "NUMBER_CHANGED": 22,
    "REDIRECTION_TO_NEW_DESTINATION": 23,
    "EXCHANGE_ROUTING_ERROR": 25,
    "DESTINATION_OUT_OF_ORDER": 27,
    "INVALID_NUMBER_FORMAT": 28,
    "FACILITY_REJECTED": 29,
    "RESPONSE_TO_STATUS_ENQUIRY": 30,
    "NORMAL_UNSPECIFIED": 31,
    "NORMAL_CIRCUIT_CONGESTION": 34,
    "NETWORK_OUT_OF_ORDER": 38,
    "NORMAL_TEMPORARY_FAILURE": 41,
    "SWITCH_CONGESTION": 42,
    "ACCESS_INFO_DISCARDED": 43,
    "REQUESTED_CHAN_UNAVAIL": 44,
    "PRE_EMPTED": 45,
    "FACILITY_NOT_SUBSCRIBED": 50,
    "OUTGOING_CALL_BARRED": 52,
    "INCOMING_CALL_BARRED": 54,
    "BEARERCAPABILITY_NOTAUTH": 57,
    "BEARERCAPABILITY_NOTAVAIL": 58,
    "SERVICE_UNAVAILABLE": 63,
    "BEARERCAPABILITY_NOTIMPL": 65,
    "CHAN_NOT_IMPLEMENTED": 66,
    "FACILITY_NOT_IMPLEMENTED": 69,
    "SERVICE_NOT_IMPLEMENTED": 79,
    "INVALID_CALL_REFERENCE": 81,
    "INCOMPATIBLE_DESTINATION": 88,
    "INVALID_MSG_UNSPECIFIED": 95,
    "MANDATORY_IE_MISSING": 96,
    "MESSAGE_TYPE_NONEXIST": 97,
    "WRONG_MESSAGE": 98,
    "IE_NONEXIST": 99,
    "INVALID_IE_CONTENTS": 100,
    "WRONG_CALL_STATE": 101,
    "RECOVERY_ON_TIMER_EXPIRE": 102,
    "MANDATORY_IE_LENGTH_ERROR": 103,
    "PROTOCOL_ERROR": 111,
    "INTERWORKING": 127,
    "SUCCESS": 142,
    "ORIGINATOR_CANCEL": 487,
    "CRASH": 700,
    "SYSTEM_SHUTDOWN": 701,
    "LOSE_RACE": 502,
    "MANAGER_REQUEST": 503,
    "BLIND_TRANSFER": 600,
    "ATTENDED_TRANSFER": 601,
    "ALLOTTED_TIMEOUT": 602,
    "USER_CHALLENGE": 603,
    "MEDIA_TIMEOUT": 604,
    "PICKED_OFF": 605,
    "USER_NOT_REGISTERED": 606,
    "PROGRESS_TIMEOUT": 607,
    "INVALID_GATEWAY": 608,
    "GATEWAY_DOWN": 609,
    "INVALID_URL": 610,
    "INVALID_PROFILE": 611,
    "NO_PICKUP": 612,
    "SRTP_READ_ERROR": 613,
    "BOWOUT": 614,
    "BUSY_EVERYWHERE": 615,
    "DECLINE": 616,
    "DOES_NOT_EXIST_ANYWHERE": 617,
    "NOT_ACCEPTABLE": 618,
    "UNWANTED": 619,
    "NO_IDENTITY": 620,
    "BAD_IDENTITY_INFO": 621,
    "UNSUPPORTED_CERTIFICATE": 622,
    "INVALID_IDENTITY": 623,
    "STALE_DATE": 624,
    "REJECT_ALL": 625,
}

_CAUSE_NAMES = {code: name for name, code in CAUSE_CODES.items()}


def str2cause(text: str, default: str = "NORMAL_CLEARING") -> str:
    """The cause named by ``text`` (any case, or a number), like ``switch_channel_str2cause``.

    An unknown name gives ``default``; FreeSWITCH's ``hupall`` and ``uuid_kill``
    use NORMAL_CLEARING there.
    """
    text = text.strip()
    if text.isdigit():
        return _CAUSE_NAMES.get(int(text), default)
    name = text.upper()
    return name if name in CAUSE_CODES else default


def q850(cause: str) -> int:
    """``hangup_cause_q850``: the Q.850 code, NORMAL_CLEARING for FreeSWITCH-only causes."""
    code = CAUSE_CODES.get(cause, 16)
    return code if code <= 127 else 16


def cause_to_sip(cause: str) -> int:
    """The status an unanswered inbound leg refuses its INVITE with (``hangup_cause_to_sip``)."""
    return _CAUSE_TO_SIP.get(cause, 480)


def sip_to_cause(status: int) -> str:
    """The cause a leg takes from a final SIP response (``sofia_glue_sip_cause_to_freeswitch``)."""
    return _SIP_TO_CAUSE.get(status, "NORMAL_UNSPECIFIED")


_CAUSE_TO_SIP: dict[str, int] = {
    "UNALLOCATED_NUMBER": 404,
    "NO_ROUTE_TRANSIT_NET": 404,
    "NO_ROUTE_DESTINATION": 404,
    "USER_BUSY": 486,
    "NO_USER_RESPONSE": 408,
    "NO_ANSWER": 480,
    "SUBSCRIBER_ABSENT": 480,
    "CALL_REJECTED": 603,
    "NUMBER_CHANGED": 410,
    "REDIRECTION_TO_NEW_DESTINATION": 410,
    "DESTINATION_OUT_OF_ORDER": 502,
    "INVALID_PROFILE": 502,
    "INVALID_NUMBER_FORMAT": 484,
    "INVALID_URL": 484,
    "INVALID_GATEWAY": 484,
    "FACILITY_REJECTED": 501,
    "NORMAL_UNSPECIFIED": 480,
    "REQUESTED_CHAN_UNAVAIL": 503,
    "NORMAL_CIRCUIT_CONGESTION": 503,
    "NETWORK_OUT_OF_ORDER": 503,
    "NORMAL_TEMPORARY_FAILURE": 503,
    "SWITCH_CONGESTION": 503,
    "GATEWAY_DOWN": 503,
    "OUTGOING_CALL_BARRED": 403,
    "INCOMING_CALL_BARRED": 403,
    "BEARERCAPABILITY_NOTAUTH": 403,
    "BEARERCAPABILITY_NOTAVAIL": 503,
    "BEARERCAPABILITY_NOTIMPL": 488,
    "INCOMPATIBLE_DESTINATION": 488,
    "FACILITY_NOT_IMPLEMENTED": 501,
    "SERVICE_NOT_IMPLEMENTED": 501,
    "RECOVERY_ON_TIMER_EXPIRE": 504,
    "ORIGINATOR_CANCEL": 487,
    "EXCHANGE_ROUTING_ERROR": 483,
    "BUSY_EVERYWHERE": 600,
    "DECLINE": 603,
    "DOES_NOT_EXIST_ANYWHERE": 604,
    "NOT_ACCEPTABLE": 606,
    "UNWANTED": 607,
}

_SIP_TO_CAUSE: dict[int, str] = {
    200: "NORMAL_CLEARING",
    401: "CALL_REJECTED",
    402: "CALL_REJECTED",
    403: "CALL_REJECTED",
    407: "CALL_REJECTED",
    603: "CALL_REJECTED",
    608: "CALL_REJECTED",
    404: "UNALLOCATED_NUMBER",
    485: "NO_ROUTE_DESTINATION",
    604: "NO_ROUTE_DESTINATION",
    408: "RECOVERY_ON_TIMER_EXPIRE",
    504: "RECOVERY_ON_TIMER_EXPIRE",
    410: "NUMBER_CHANGED",
    413: "INTERWORKING",
    414: "INTERWORKING",
    416: "INTERWORKING",
    420: "INTERWORKING",
    421: "INTERWORKING",
    423: "INTERWORKING",
    505: "INTERWORKING",
    513: "INTERWORKING",
    480: "NO_USER_RESPONSE",
    400: "NORMAL_TEMPORARY_FAILURE",
    481: "NORMAL_TEMPORARY_FAILURE",
    500: "NORMAL_TEMPORARY_FAILURE",
    503: "NORMAL_TEMPORARY_FAILURE",
    486: "USER_BUSY",
    600: "USER_BUSY",
    484: "INVALID_NUMBER_FORMAT",
    488: "INCOMPATIBLE_DESTINATION",
    606: "INCOMPATIBLE_DESTINATION",
    502: "NETWORK_OUT_OF_ORDER",
    405: "SERVICE_UNAVAILABLE",
    406: "SERVICE_NOT_IMPLEMENTED",
    415: "SERVICE_NOT_IMPLEMENTED",
    501: "SERVICE_NOT_IMPLEMENTED",
    482: "EXCHANGE_ROUTING_ERROR",
    483: "EXCHANGE_ROUTING_ERROR",
    487: "ORIGINATOR_CANCEL",
}

#: Reason phrases sofia-sip puts on the final responses the simulator sends.
SIP_PHRASES: dict[int, str] = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    410: "Gone",
    480: "Temporarily Unavailable",
    483: "Too Many Hops",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
}
