"""Bridging two channels (``uuid_bridge``, ESL_PROTOCOL.md §5.3).

Both legs leave what they were doing (a parked leg fires CHANNEL_UNPARK and
EXECUTE_COMPLETE of park), fire ``CHANNEL_EXECUTE uuid_bridge``, and enter
CS_EXCHANGE_MEDIA. The first leg, the originator, fires the single
CHANNEL_BRIDGE and, when either leg hangs up, the CHANNEL_UNBRIDGE. From the
bridge on, both legs' events carry Other-Type and Other-Leg-*.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchy import ids
from switchy.sim.calling import At

if TYPE_CHECKING:
    from switchy.sim.channel import Channel


def uuid_bridge(a: Channel, b: Channel) -> None:
    """Bridge ``a`` (the originator) with ``b``; each session joins the bridge when it can."""
    a.bridge_peer, a.bridge_originator = b, True
    b.bridge_peer, b.bridge_originator = a, False
    a.redirect("bridge")
    b.redirect("bridge")


async def bridged_session(channel: Channel) -> None:
    """The part one leg plays in a bridge, from joining it to leaving it."""
    peer = channel.bridge_peer
    if peer is None:
        return
    channel.fire(
        "CHANNEL_EXECUTE",
        At.EXECUTE,
        after=[
            ("Application", "uuid_bridge"),
            ("Application-Data", peer.uuid),
            ("Application-UUID", ids.new_uuid()),
        ],
    )
    channel.bridged_to = peer
    kind = "originatee" if channel.bridge_originator else "originator"
    if peer.profile is not None:
        channel.set_other_leg(kind, peer.profile, with_times=True)
    legs = [("Bridge-A-Unique-ID", channel.uuid), ("Bridge-B-Unique-ID", peer.uuid)]
    if channel.bridge_originator:
        if channel.profile is not None:
            channel.profile.times.bridged = channel.now_us()
        channel.set_vars([("bridge_channel", peer.name), ("bridge_uuid", peer.uuid)])
        channel.fire("CHANNEL_BRIDGE", At.BRIDGE, before=legs)
    await channel.until(lambda: not channel.is_up or not peer.is_up, None)
    if channel.bridge_originator:
        channel.fire("CHANNEL_UNBRIDGE", At.UNBRIDGE, before=legs)
    channel.bridged_to = None
    channel.bridge_peer = None
    if channel.is_up:
        # What FreeSWITCH does after a uuid_bridge ends is an assumption: the survivor
        # parks when park_after_bridge is set, otherwise hangs up NORMAL_CLEARING.
        if channel.variables.get("park_after_bridge", "").lower() == "true":
            channel.redirect("park")
        else:
            channel.hangup("NORMAL_CLEARING")
