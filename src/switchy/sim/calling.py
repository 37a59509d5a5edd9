"""Where FreeSWITCH fires each event from: the Event-Calling-* headers.

The values are copied from the recorded traces (tests/data/traces); the few
events the traces do not show are marked.
"""

from __future__ import annotations

CallingSite = tuple[str, str, int]


class At:
    """Event-Calling-File/Function/Line-Number of each event, as the traces show them."""

    OUTGOING: CallingSite = ("switch_core_session.c", "switch_core_session_outgoing_channel", 768)
    STATE: CallingSite = ("switch_channel.c", "switch_channel_perform_set_running_state", 2408)
    CREATE: CallingSite = ("switch_core_state_machine.c", "switch_core_session_run", 626)
    ORIGINATE: CallingSite = ("switch_core_state_machine.c", "switch_core_session_run", 632)
    CALLSTATE: CallingSite = ("switch_channel.c", "switch_channel_perform_set_callstate", 301)
    ANSWER: CallingSite = ("switch_channel.c", "switch_channel_perform_mark_answered", 3846)
    PRE_ANSWER: CallingSite = ("switch_channel.c", "switch_channel_perform_mark_pre_answered", 3560)
    # Not in the traces: the function is the one FreeSWITCH fires CHANNEL_PROGRESS from,
    # the line number is an estimate from its place in switch_channel.c.
    RING_READY: CallingSite = (
        "switch_channel.c",
        "switch_channel_perform_mark_ring_ready_value",
        3464,
    )
    HANGUP: CallingSite = ("switch_channel.c", "switch_channel_perform_hangup", 3445)
    HANGUP_COMPLETE: CallingSite = (
        "switch_core_state_machine.c",
        "switch_core_session_reporting_state",
        943,
    )
    DESTROY: CallingSite = ("switch_core_session.c", "switch_core_session_perform_destroy", 1584)
    EXECUTE: CallingSite = ("switch_core_session.c", "switch_core_session_exec", 2944)
    EXECUTE_COMPLETE: CallingSite = ("switch_core_session.c", "switch_core_session_exec", 2967)
    PARK: CallingSite = ("switch_ivr.c", "switch_ivr_park", 1002)
    UNPARK: CallingSite = ("switch_ivr.c", "switch_ivr_park", 1213)
    REAL_READ_CODEC: CallingSite = (
        "switch_core_codec.c",
        "switch_core_session_set_real_read_codec",
        168,
    )
    READ_CODEC: CallingSite = ("switch_core_codec.c", "switch_core_session_set_read_codec", 279)
    WRITE_CODEC: CallingSite = ("switch_core_codec.c", "switch_core_session_set_write_codec", 450)
    CALL_UPDATE: CallingSite = ("switch_channel.c", "switch_channel_flip_cid", 3277)
    UUID: CallingSite = ("switch_core_session.c", "switch_core_session_set_uuid", 2051)
    PLAYBACK_START: CallingSite = ("switch_ivr_play_say.c", "switch_ivr_play_file", 1646)
    PLAYBACK_STOP: CallingSite = ("switch_ivr_play_say.c", "switch_ivr_play_file", 2020)
    PRIVATE_COMMAND: CallingSite = ("switch_ivr.c", "switch_ivr_parse_next_event", 804)
    DTMF: CallingSite = ("switch_channel.c", "switch_channel_dequeue_dtmf", 677)
    BRIDGE: CallingSite = ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1689)
    UNBRIDGE: CallingSite = ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1879)
    RECORD_START: CallingSite = ("switch_ivr_async.c", "record_callback", 1481)
    RECORD_STOP: CallingSite = ("switch_ivr_async.c", "send_record_stop_event", 1240)
    MEDIA_BUG_START: CallingSite = (
        "switch_core_media_bug.c",
        "switch_core_media_bug_add",
        1014,
    )
    MEDIA_BUG_STOP: CallingSite = (
        "switch_core_media_bug.c",
        "switch_core_media_bug_destroy",
        84,
    )
    BERT_IN_SYNC: CallingSite = ("mod_bert.c", "bert_test_function", 313)
    SEND_CALL_UPDATE: CallingSite = ("mod_sofia.c", "sofia_receive_message", 2100)
    RECV_INFO: CallingSite = ("sofia.c", "create_info_event", 9721)
