"""mod_loopback in simulation: ``loopback/<exten>[/<context>[/<dialplan>]]`` (trace 06).

An originate to a loopback endpoint creates two channels on the same node:
the ``-a`` leg (outbound, what originate gets) and its ``-b`` partner
(inbound), which runs ``<exten>`` in ``<context>``. Whatever one leg does
(answer, early media, ringing, hangup, DTMF) the other one learns at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchy import ids
from switchy.sim.calling import At
from switchy.sim.channel import (
    CS_CONSUME_MEDIA,
    CS_INIT,
    CS_NEW,
    CS_NONE,
    CS_ROUTING,
    L16,
    CallerProfile,
    Channel,
    Headers,
    ProfileTimes,
)

if TYPE_CHECKING:
    from switchy.sim.switch import Node


class LoopbackChannel(Channel):
    """One leg of a loopback pair."""

    endpoint = "loopback"

    def __init__(self, node: Node, *, uuid: str, name: str, direction: str) -> None:
        super().__init__(node, uuid=uuid, name=name, direction=direction)
        self.partner: LoopbackChannel | None = None
        self.originated = False
        #: The originate variables the ``-b`` leg inherits (``-a`` only).
        self.partner_vars: Headers = []

    @classmethod
    def pair(
        cls,
        node: Node,
        data: str,
        *,
        uuid: str | None,
        dial_vars: Headers,
        caller_name: str,
        caller_number: str,
        early_ok: bool,
    ) -> LoopbackChannel:
        """Create the ``-a`` leg (its ``-b`` partner appears when its session starts)."""
        parts = data.split("/")
        exten = parts[0]
        context = parts[1] if len(parts) > 1 and parts[1] else "default"
        dialplan = parts[2] if len(parts) > 2 and parts[2] else "xml"
        a = cls(node, uuid=ids.new_uuid(), name=f"loopback/{data}-a", direction="outbound")
        a.set_vars(
            [
                ("direction", "outbound"),
                ("is_outbound", "true"),
                ("uuid", a.uuid),
                ("call_uuid", a.uuid),
                ("session_id", str(a.session_id)),
            ]
        )
        # The first CODEC events show running state CS_NONE, state CS_NEW (trace 06).
        a.running_state, a.state = CS_NONE, CS_NEW
        a.set_codec_one_by_one()
        a.name = f"loopback/{exten}-a"
        a.set_var("channel_name", a.name)
        a.set_profile(_profile(a, exten, context, dialplan, parts[-1], caller_name, caller_number))
        a.partner_vars = list(dial_vars)
        a.state = CS_INIT
        if uuid and uuid != a.uuid:
            old = a.uuid
            a.uuid = uuid
            if a.profile:
                a.profile.uuid = uuid
            a.set_var("uuid", uuid)
            a.set_var("call_uuid", uuid)
            a.fire("CHANNEL_UUID", At.UUID, before=[("Old-Unique-ID", old)])
        a.set_vars(
            [
                *dial_vars,
                ("originate_early_media", "true" if early_ok else "false"),
                ("originate_endpoint", "loopback"),
            ]
        )
        a.originated = True
        a.fire("CHANNEL_OUTGOING", At.OUTGOING)
        return a

    def set_codec_one_by_one(self) -> None:
        """Loopback sets the L16 read codec, then the write codec, firing CODEC for each."""
        self.read_codec = L16
        self.fire(
            "CODEC",
            At.READ_CODEC,
            after=[
                ("channel-read-codec-name", L16.name),
                ("channel-read-codec-rate", str(L16.rate)),
                ("channel-read-codec-bit-rate", str(L16.bit_rate)),
            ],
        )
        self.set_vars([("read_codec", L16.name), ("read_rate", str(L16.rate))])
        self.write_codec = L16
        self.fire(
            "CODEC",
            At.WRITE_CODEC,
            after=[
                ("Channel-Write-Codec-Name", L16.name),
                ("Channel-Write-Codec-Rate", str(L16.rate)),
                ("Channel-Write-codec-bit-rate", str(L16.bit_rate)),
            ],
        )
        self.set_vars([("write_codec", L16.name), ("write_rate", str(L16.rate))])

    async def run(self) -> None:
        if self.direction == "outbound":
            await self._run_a()
        else:
            await self._run_b()

    async def _run_a(self) -> None:
        self.set_running_state(CS_INIT)
        b = self._create_b()
        self.set_vars([("other_loopback_leg_uuid", b.uuid), ("loopback_leg", "A")])
        self.state = CS_ROUTING
        self.fire("CHANNEL_CREATE", At.CREATE)
        if self.originated:
            self.fire("CHANNEL_ORIGINATE", At.ORIGINATE)
        self.advance(CS_ROUTING)
        self.advance(CS_CONSUME_MEDIA)
        self.node.add_channel(b)
        b.start()

    def _create_b(self) -> LoopbackChannel:
        exten = self.profile_destination
        b = LoopbackChannel(
            self.node,
            uuid=ids.new_uuid(),
            name=f"loopback/{exten}-b",
            direction="inbound",
        )
        b.set_vars(
            [
                ("direction", "inbound"),
                ("uuid", b.uuid),
                ("call_uuid", b.uuid),
                ("session_id", str(b.session_id)),
            ]
        )
        b.running_state, b.state = CS_NONE, CS_NEW
        b.set_codec_one_by_one()
        b.set_var("channel_name", b.name)
        if self.profile is not None:
            # Both legs get the profile mod_loopback builds from the dialled data.
            profile = self.profile.copy()
            profile.direction = profile.logical_direction = "inbound"
            profile.uuid, profile.channel_name = b.uuid, b.name
            profile.times = ProfileTimes(created=b.now_us(), profile_created=b.now_us())
            b.set_profile(profile)
        b.set_vars(
            [
                *self.partner_vars,
                ("other_loopback_leg_uuid", self.uuid),
                ("loopback_leg", "B"),
            ]
        )
        b.partner = self
        self.partner = b
        return b

    async def _run_b(self) -> None:
        self.advance(CS_INIT)
        self.state = CS_ROUTING
        self.fire("CHANNEL_CREATE", At.CREATE)
        await self.route()

    # -- one leg tells the other --------------------------------------------

    def on_ring(self) -> None:
        if self.partner is not None:
            self.partner.mark_ring_ready()

    def on_pre_answer(self) -> None:
        if self.partner is not None:
            self.partner.mark_pre_answered()

    def on_answer(self) -> None:
        # mod_loopback: INDICATE_ANSWER marks the other leg answered.
        if self.partner is not None:
            self.partner.mark_answered()

    def on_hangup_requested(self) -> None:
        partner = self.partner
        if partner is not None and partner.is_up:
            partner.hangup(self.hangup_cause or "NORMAL_CLEARING")

    def on_hangup(self) -> None:
        self.set_var("is_loopback", "1")

    def on_destroy(self) -> None:
        super().on_destroy()
        self.partner = None

    @property
    def media_peer(self) -> Channel | None:
        return self.bridged_to if self.bridged_to is not None else self.partner

    def send_dtmf(self, digits: str) -> bool:
        partner = self.partner
        if partner is None or not partner.is_up:
            return False
        partner.receive_dtmf_string(digits, source="ENDPOINT")
        self.set_var("last_dtmf_duration", str(partner.dtmf_samples(digits)))
        return True


def _profile(
    channel: Channel,
    exten: str,
    context: str,
    dialplan: str,
    callee: str,
    caller_name: str,
    caller_number: str,
) -> CallerProfile:
    profile = CallerProfile(
        "outbound",
        "outbound",
        dialplan=dialplan,
        caller_id_name=caller_name,
        caller_id_number=caller_number,
        orig_caller_id_name=caller_name,
        orig_caller_id_number=caller_number,
        callee_id_name="Outbound Call",
        callee_id_number=callee,
        ani=caller_number,
        destination_number=exten,
        uuid=channel.uuid,
        source="mod_loopback",
        context=context,
        channel_name=channel.name,
    )
    now = channel.now_us()
    profile.times.created = profile.times.profile_created = now
    return profile
