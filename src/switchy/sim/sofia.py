"""mod_sofia in simulation: SIP profiles, SIP legs, and the "network" between them.

No SIP goes on a wire. A :class:`SipNetwork` maps each profile's
``ip:port`` to the simulated node that owns it, so an originate to
``sofia/external/<user>@<address>`` creates an outbound leg here and an
inbound leg on the node owning ``<address>``, if both nodes joined the same
network (the nodes of a cluster do; all of them run on one event loop). The two legs talk through a
:class:`Dialog`, whose messages (180, 183, 200, final refusals, BYE,
CANCEL) are delivered on the next loop iteration, as network packets
would be. The variables each leg gets at each step, and their order,
follow the traces (trace 03, 04, 07, 10).

A target ending in ``;fs_path=<sip uri>`` (percent-encoded) sends the INVITE
to that URI's address instead of the Request-URI's host, as mod_sofia does:
a :class:`SipProxy` registered there (the simulated device under test,
:mod:`switchy.sim.dut`) relays it to the Request-URI and stays on the
dialog's path (Record-Route), as a :class:`ProxyHop`.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

from switchy import ids
from switchy.sim.calling import At
from switchy.sim.causes import CAUSE_CODES, SIP_PHRASES, cause_to_sip, sip_to_cause
from switchy.sim.channel import (
    CS_CONSUME_MEDIA,
    CS_INIT,
    CS_NEW,
    CS_ROUTING,
    PCMU,
    CallerProfile,
    Channel,
    Headers,
    ProfileTimes,
)
from switchy.sim.version import USER_AGENT

if TYPE_CHECKING:
    from switchy.sim.switch import Node

SIP_ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY"
DEFAULT_CALLER_NUMBER = "0000000000"


@dataclass
class SipProfile:
    """One sofia profile: where it listens and which context its inbound calls run."""

    node: Node
    name: str
    ip: str
    port: int
    context: str = "switchy"
    dialplan: str = "XML"
    calls_in: int = 0
    failed_calls_in: int = 0
    calls_out: int = 0
    failed_calls_out: int = 0

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def url(self) -> str:
        return f"sip:mod_sofia@{self.address}"


class SipProxy(Protocol):
    """A SIP proxy of the simulated network: it takes INVITEs routed to its address."""

    def receive_invite(self, uac: SofiaChannel) -> None:
        """Handle the INVITE of ``uac`` (its Request-URI is ``uac.target``)."""


@dataclass(frozen=True)
class ProxyHop:
    """A proxy that relays a dialog and record-routed it.

    ``branch`` is its Via branch on the INVITE; ``observe`` sees every message
    of the dialog as it passes: ``"180"``, ``"183"``, ``"200"``, ``"INFO"``,
    ``"BYE"``, ``"CANCEL"``, or the status of a final refusal (``"486"``...).
    """

    ip: str
    port: int
    branch: str
    observe: Callable[[str], None]

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def record_route(self) -> str:
        return f"<sip:{self.address};lr>"


class SipNetwork:
    """Which simulated profile, or proxy, answers at which ``ip:port``."""

    def __init__(self) -> None:
        self._profiles: dict[str, SipProfile] = {}
        self._proxies: dict[str, SipProxy] = {}

    def register(self, profile: SipProfile) -> None:
        self._profiles[profile.address] = profile

    def unregister(self, profile: SipProfile) -> None:
        if self._profiles.get(profile.address) is profile:
            del self._profiles[profile.address]

    def register_proxy(self, address: str, proxy: SipProxy) -> None:
        """Make ``proxy`` take the INVITEs sent to ``address`` (``ip:port``)."""
        self._proxies[address] = proxy

    def unregister_proxy(self, address: str, proxy: SipProxy) -> None:
        if self._proxies.get(address) is proxy:
            del self._proxies[address]

    def lookup(self, address: str) -> SipProfile | None:
        return self._profiles.get(address)

    def invite(self, uac: SofiaChannel) -> None:
        """Send ``uac``'s INVITE to its next hop: its ``fs_path`` route, else its Request-URI."""
        target = uac.target
        next_hop = target.route or target.address
        proxy = self._proxies.get(next_hop)
        if proxy is not None:
            proxy.receive_invite(uac)
            return
        profile = self.lookup(next_hop)
        loop = uac.node.loop
        if profile is None:
            # Nothing listens there: on loopback the ICMP error fails the INVITE at once (trace 04).
            loop.call_soon(_refuse_unreachable, uac, "Service Unavailable")
            return
        if not profile.node.accepts_inbound():
            # sofia answers 503 when it cannot create the session.
            loop.call_soon(_refuse_unreachable, uac, "Maximum Calls In Progress")
            return
        _start_inbound(profile, uac, None)

    def relay_invite(self, uac: SofiaChannel, hop: ProxyHop) -> int | None:
        """A proxy at ``hop`` forwards ``uac``'s INVITE to its Request-URI.

        Returns None once the far leg exists, else the final status the far end
        (or the attempt to reach it) answered; 0 when nothing listens at the
        Request-URI's address.
        """
        profile = self.lookup(uac.target.address)
        if profile is None:
            return 0
        if not profile.node.accepts_inbound():
            return 503
        _start_inbound(profile, uac, hop)
        return None


def _start_inbound(profile: SipProfile, uac: SofiaChannel, hop: ProxyHop | None) -> None:
    uas = SofiaChannel.inbound(profile, uac, hop)
    profile.node.add_channel(uas)
    uas.start()


@dataclass(frozen=True)
class SipTarget:
    """The parts of ``<user>@<host>[:<port>][;params]``.

    ``params`` keeps the URI parameters as written (``;fs_path=...`` included);
    ``route`` is the ``ip:port`` of the ``fs_path`` route, where the INVITE goes.
    """

    user: str
    host: str
    port: int
    params: str = ""
    route: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def hostport(self) -> str:
        """The host as the URI spells it (the port only when given)."""
        return self.address if self.port != 5060 else self.host


def parse_target(dest: str) -> SipTarget | None:
    """Split ``user@host[:port][;params]``; None when there is no ``@``."""
    uri, semicolon, params = dest.partition(";")
    if uri.lower().startswith(("sip:", "sips:")):
        uri = uri.split(":", 1)[1]
    user, at, hostport = uri.rpartition("@")
    if not at or not hostport:
        return None
    address = _host_port(hostport)
    if address is None:
        return None
    return SipTarget(user, *address, semicolon + params, _fs_path_route(dest))


def _host_port(text: str) -> tuple[str, int] | None:
    host, _, port_text = text.partition(":")
    try:
        return host, int(port_text) if port_text else 5060
    except ValueError:
        return None


def _fs_path_route(dest: str) -> str | None:
    """The ``ip:port`` of a ``;fs_path=`` route, as ``sofia_glue_get_destination`` reads it.

    The route ends at the first ``>`` or ``;`` (so its own parameters arrive
    percent-encoded), is URL-decoded, and only its first URI (before a ``,``)
    is the next hop.
    """
    start = dest.find(";fs_path=")
    if start < 0:
        return None
    route = dest[start + len(";fs_path=") :]
    for delimiter in ">;":
        route = route.split(delimiter, 1)[0]
    route = unquote(route).split(",", 1)[0].strip().strip("<>")
    if route.lower().startswith(("sip:", "sips:")):
        route = route.split(":", 1)[1]
    hostport = route.split(";", 1)[0].rpartition("@")[2]
    address = _host_port(hostport) if hostport else None
    return None if address is None else f"{address[0]}:{address[1]}"


_TOKEN_ALPHABET = string.ascii_letters + string.digits


def _token(length: int) -> str:
    return "".join(random.choices(_TOKEN_ALPHABET, k=length))


def new_branch() -> str:
    """A Via branch parameter value, RFC 3261's magic cookie first."""
    return "z9hG4bK" + _token(13)


def _media_port() -> int:
    return random.randrange(16384, 32768, 2)


def _sdp(ip: str, port: int, *, offer: bool) -> str:
    session = random.randrange(1_700_000_000, 1_800_000_000)
    payloads = "0 8 101 13" if offer else "0 101 13"
    lines = [
        "v=0",
        f"o=FreeSWITCH {session} {session + 1} IN IP4 {ip}",
        "s=FreeSWITCH",
        f"c=IN IP4 {ip}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {payloads}",
        "a=rtpmap:0 PCMU/8000",
        *(["a=rtpmap:8 PCMA/8000"] if offer else []),
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=rtpmap:13 CN/8000",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return "\r\n".join(lines) + "\r\n"


def reason_header(cause: str) -> str:
    """The Reason header FreeSWITCH puts on BYE, CANCEL and refusals."""
    code = CAUSE_CODES.get(cause, 16)
    protocol = "Q.850" if 0 < code < 128 else "SIP"
    return f'{protocol};cause={code};text="{cause}"'


def cause_from_far_end(cause: str, status: int) -> str:
    """The cause a leg takes from a far-end message: its Q.850 Reason, else the status."""
    code = CAUSE_CODES.get(cause, 0)
    return cause if 0 < code < 128 else sip_to_cause(status)


class Dialog:
    """The SIP dialog between an outbound leg (UAC) and the inbound leg it created (UAS).

    ``hop`` is the proxy the dialog passes through, if any: it sees each message.
    """

    def __init__(self, uac: SofiaChannel, uas: SofiaChannel, hop: ProxyHop | None = None) -> None:
        self.uac = uac
        self.uas = uas
        self.hop = hop
        self.call_id = (
            f"{ids.new_uuid()[:8]}-{random.randrange(1 << 16):04x}-1240-13b9-f2ec5493930f"
        )
        self.from_tag = _token(13)
        self.to_tag = _token(13)
        self.cseq = str(random.randrange(100_000_000, 130_000_000))
        self.branch = new_branch()

    @property
    def caller_via(self) -> str:
        """The UAC's Via on the INVITE once the next hop filled in its ``rport``."""
        profile = self.uac.sip_profile
        return f"SIP/2.0/UDP {profile.address};rport={profile.port};branch={self.branch}"

    def peer_of(self, channel: SofiaChannel) -> SofiaChannel:
        return self.uas if channel is self.uac else self.uac

    def send(self, receiver: SofiaChannel, action: Callable[[], None], message: str) -> None:
        """Deliver ``message`` to ``receiver`` on the next loop iteration, like a packet.

        ``action`` is what receiving it does; the proxy on the path, if any,
        sees ``message`` (a method, or a response status) as it passes.
        """
        if self.hop is not None:
            self.hop.observe(message)

        def deliver() -> None:
            if receiver.is_up:
                action()

        receiver.node.loop.call_soon(deliver)


class SofiaChannel(Channel):
    """A SIP leg of the ``external`` profile."""

    endpoint = "sofia"

    #: Where an outbound leg sends its INVITE (outbound legs only).
    target: SipTarget

    def __init__(
        self, node: Node, profile: SipProfile, *, uuid: str, name: str, direction: str
    ) -> None:
        super().__init__(node, uuid=uuid, name=name, direction=direction)
        self.sip_profile = profile
        self.dialog: Dialog | None = None
        self.originated = False
        self.local_media_port = _media_port()
        self._far_end_done = False
        #: Set while a proxy holds this leg's INVITE without having forwarded it:
        #: a CANCEL (called with the hangup cause) stops it there.
        self.cancel_pending_invite: Callable[[str], None] | None = None

    # -- outbound legs ------------------------------------------------------

    @classmethod
    def outbound(
        cls,
        node: Node,
        profile: SipProfile,
        target: SipTarget,
        *,
        uuid: str,
        dial_vars: list[tuple[str, str]],
        caller_name: str,
        caller_number: str,
        early_ok: bool,
        originator: Channel | None = None,
    ) -> SofiaChannel:
        """Create the originated leg and fire CHANNEL_OUTGOING (the session starts later).

        ``originator`` is the a-leg of a ``bridge``: the new leg's profile is a
        clone of its profile, and its events name it as Other-Leg.
        """
        dest = f"{target.user}@{target.hostport}"
        # The channel name stops before the URI parameters (sofia_glue_set_name).
        name = f"sofia/{profile.name}/{dest}"
        now = int(node.clock() * 1_000_000)
        a_profile = originator.profile if originator is not None else None
        if a_profile is not None:
            caller = a_profile.copy()
            caller.direction = caller.logical_direction = "outbound"
            caller.caller_id_name = caller.orig_caller_id_name = caller_name
            caller.caller_id_number = caller.orig_caller_id_number = caller_number
            caller.callee_id_name, caller.callee_id_number = "Outbound Call", target.user
            caller.destination_number, caller.uuid, caller.channel_name = target.user, uuid, name
            caller.profile_index = "1"
            caller.times = ProfileTimes()
        else:
            caller = CallerProfile(
                "outbound",
                "outbound",
                caller_id_name=caller_name,
                caller_id_number=caller_number,
                orig_caller_id_name=caller_name,
                orig_caller_id_number=caller_number,
                callee_id_name="Outbound Call",
                callee_id_number=target.user,
                ani=caller_number,
                destination_number=target.user,
                uuid=uuid,
                source="src/switch_ivr_originate.c",
                context="default",
                channel_name=name,
            )
        caller.times.created = caller.times.profile_created = now
        channel = cls(node, profile, uuid=uuid, name=name, direction="outbound")
        channel.set_profile(caller)
        channel.target = target
        channel.originated = True
        if originator is not None and a_profile is not None:
            channel.set_other_leg("originator", a_profile.copy(), with_times=False)
            a_uuid = originator.uuid
            identity = [
                ("direction", "outbound"),
                ("is_outbound", "true"),
                ("uuid", uuid),
                ("session_id", str(channel.session_id)),
                ("sip_local_network_addr", profile.ip),
                ("sip_profile_name", profile.name),
                ("text_media_flow", "disabled"),
                ("channel_name", name),
                ("sip_destination_url", f"sip:{dest}{target.params}"),
                ("sip_cid_type", "rpid"),
                ("max_forwards", "69"),
                ("originator_codec", "PCMU@8000h@20i"),
                ("originator", a_uuid),
                ("signal_bond", a_uuid),
                ("call_uuid", a_uuid),
                *dial_vars,
                ("originate_early_media", "true" if early_ok else "false"),
                ("originating_leg_uuid", a_uuid),
                ("originate_endpoint", "sofia"),
                ("rtp_use_codec_string", "PCMU@8000h@20i"),
            ]
            originator.set_var("signal_bond", uuid)
        else:
            identity = [
                ("direction", "outbound"),
                ("is_outbound", "true"),
                ("uuid", uuid),
                ("call_uuid", uuid),
                ("session_id", str(channel.session_id)),
                ("sip_local_network_addr", profile.ip),
                ("sip_profile_name", profile.name),
                ("video_media_flow", "disabled"),
                ("text_media_flow", "disabled"),
                ("channel_name", name),
                ("sip_destination_url", f"sip:{dest}{target.params}"),
                *dial_vars,
                ("originate_early_media", "true" if early_ok else "false"),
                ("originate_endpoint", "sofia"),
                ("rtp_use_codec_string", "PCMU,PCMA"),
            ]
        channel.set_vars(
            [
                *identity,
                ("local_media_ip", profile.ip),
                ("local_media_port", str(channel.local_media_port)),
                ("advertised_media_ip", profile.ip),
                ("audio_media_flow", "sendrecv"),
                ("rtp_local_sdp_str", _sdp(profile.ip, channel.local_media_port, offer=True)),
                ("sip_outgoing_contact_uri", f"<{profile.url}>"),
                ("sip_req_uri", dest),
                ("sip_to_host", target.hostport),
                ("sip_from_host", profile.ip),
                ("sofia_profile_name", profile.name),
                ("recovery_profile_name", profile.name),
                ("sofia_profile_url", profile.url),
            ]
        )
        profile.calls_out += 1
        channel.state = CS_INIT
        channel.running_state = 13  # CS_NONE until the session thread runs
        channel.fire("CHANNEL_OUTGOING", At.OUTGOING)
        return channel

    async def run(self) -> None:
        if self.direction == "outbound":
            await self._run_outbound()
        else:
            await self._run_inbound()

    async def _run_outbound(self) -> None:
        self.set_running_state(CS_INIT)
        self.state = CS_ROUTING
        self.fire("CHANNEL_CREATE", At.CREATE)
        if self.originated:
            self.fire("CHANNEL_ORIGINATE", At.ORIGINATE)
        self.advance(CS_ROUTING)
        # switch_ivr_originate's on_routing parks the new leg in CS_CONSUME_MEDIA.
        self.advance(CS_CONSUME_MEDIA)
        self.node.sip_network.invite(self)

    # -- inbound legs -------------------------------------------------------

    @classmethod
    def inbound(
        cls, profile: SipProfile, uac: SofiaChannel, hop: ProxyHop | None = None
    ) -> SofiaChannel:
        """The leg an INVITE from ``uac`` creates on ``profile``'s node (CS_NEW, CODEC).

        ``hop`` is the proxy that relayed the INVITE: the packet comes from its
        address, with its Via on top and its Record-Route.
        """
        node = profile.node
        uac_profile = uac.sip_profile
        caller = uac.profile or CallerProfile("outbound", "outbound")
        number = caller.caller_id_number or DEFAULT_CALLER_NUMBER
        display = caller.caller_id_name or number
        uuid = ids.new_uuid()
        name = f"sofia/{profile.name}/{number}@{uac_profile.ip}"
        channel = cls(node, profile, uuid=uuid, name=name, direction="inbound")
        channel.state = channel.running_state = CS_NEW
        channel.fire("CHANNEL_STATE", At.STATE)
        now = channel.now_us()
        user = uac.target.user
        inbound_profile = CallerProfile(
            "inbound",
            "inbound",
            username=number,
            dialplan=profile.dialplan,
            caller_id_name=display,
            caller_id_number=number,
            orig_caller_id_name=display,
            orig_caller_id_number=number,
            network_addr=hop.ip if hop else uac_profile.ip,
            ani=number,
            destination_number=user,
            uuid=uuid,
            source="mod_sofia",
            context=profile.context,
            channel_name=name,
        )
        inbound_profile.times.created = inbound_profile.times.profile_created = now
        channel.set_profile(inbound_profile)
        dialog = Dialog(uac, channel, hop)
        uac.dialog = channel.dialog = dialog
        a_ip, a_port, b_ip = uac_profile.ip, uac_profile.port, profile.ip
        # The Request-URI and To stay as the caller wrote them: an INVITE routed
        # here by fs_path may name another host, where a proxy would send it on.
        to_host, to_port = uac.target.host, uac.target.port
        if hop is None:
            source_ip, source_port = a_ip, a_port
            full_via = dialog.caller_via
            route: Headers = []
            via_rport: Headers = [("sip_via_rport", str(a_port))]
            max_forwards = "70"
        else:
            # Like Kamailio, the proxy adds a Via without rport and decrements
            # Max-Forwards; its Record-Route gives both route variables (sofia.c
            # extract_header_vars). Unverified against a real FreeSWITCH.
            source_ip, source_port = hop.ip, hop.port
            full_via = f"SIP/2.0/UDP {hop.address};branch={hop.branch},{dialog.caller_via}"
            route = [
                ("sip_invite_route_uri", hop.record_route),
                ("sip_invite_record_route", hop.record_route),
            ]
            via_rport = []
            max_forwards = "69"
        x_headers = [(k, v) for k, v in uac.variables.items() if k.startswith("sip_h_")]
        # The From carries a display name only when the caller has a name.
        from_uri = f"<sip:{number}@{a_ip}>"
        if caller.caller_id_name:
            from_uri = f'"{caller.caller_id_name}" {from_uri}'

        channel.set_vars(
            [
                ("direction", "inbound"),
                ("uuid", uuid),
                ("call_uuid", uuid),
                ("session_id", str(channel.session_id)),
                ("sip_from_user", number),
                ("sip_from_uri", f"{number}@{a_ip}"),
                ("sip_from_host", a_ip),
                ("video_media_flow", "disabled"),
                ("text_media_flow", "disabled"),
                ("channel_name", name),
                ("sip_call_id", dialog.call_id),
                ("sip_local_network_addr", b_ip),
                ("sip_network_ip", source_ip),
                ("sip_network_port", str(source_port)),
                ("sip_invite_stamp", str(now)),
                ("sip_received_ip", source_ip),
                ("sip_received_port", str(source_port)),
                ("sip_via_protocol", "udp"),
                ("sip_from_user_stripped", number),
                ("sip_from_tag", dialog.from_tag),
                ("sofia_profile_name", profile.name),
                ("sofia_profile_url", profile.url),
                ("recovery_profile_name", profile.name),
                ("sip_Remote-Party-ID", f"{from_uri};party=calling;screen=yes;privacy=off"),
                ("sip_cid_type", "rpid"),
                *route,
                ("sip_full_via", full_via),
                ("sip_from_display", caller.caller_id_name),
                ("sip_full_from", f"{from_uri};tag={dialog.from_tag}"),
                ("sip_full_to", f"<sip:{user}@{to_host}:{to_port}>"),
                ("sip_allow", SIP_ALLOW),
                ("sip_req_user", user),
                ("sip_req_port", str(to_port)),
                ("sip_req_uri", f"{user}@{to_host}:{to_port}"),
                ("sip_req_host", to_host),
                ("sip_to_user", user),
                ("sip_to_port", str(to_port)),
                ("sip_to_uri", f"{user}@{to_host}:{to_port}"),
                ("sip_to_host", to_host),
                ("sip_contact_user", "mod_sofia"),
                ("sip_contact_port", str(a_port)),
                ("sip_contact_uri", f"mod_sofia@{a_ip}:{a_port}"),
                ("sip_contact_host", a_ip),
                ("sip_user_agent", USER_AGENT),
                ("sip_via_host", source_ip),
                ("sip_via_port", str(source_port)),
                *via_rport,
                ("max_forwards", max_forwards),
                *x_headers,
                ("switch_r_sdp", uac.variables.get("rtp_local_sdp_str", "")),
                (
                    "ep_codec_string",
                    "CORE_PCM_MODULE.PCMU@8000h@20i@64000b,CORE_PCM_MODULE.PCMA@8000h@20i@64000b",
                ),
                ("rtp_use_codec_string", "PCMU,PCMA"),
                ("remote_video_media_flow", "inactive"),
                ("remote_text_media_flow", "inactive"),
                ("remote_audio_media_flow", "sendrecv"),
                ("audio_media_flow", "sendrecv"),
                ("remote_media_ip", a_ip),
                ("remote_media_port", str(uac.local_media_port)),
                ("rtp_audio_recv_pt", "0"),
                *_codec_variables(),
                ("endpoint_disposition", "RECEIVED"),
            ]
        )
        channel.set_codecs(PCMU, At.REAL_READ_CODEC, together=True)
        profile.calls_in += 1
        return channel

    async def _run_inbound(self) -> None:
        self.advance(CS_INIT)
        self.state = CS_ROUTING
        self.fire("CHANNEL_CREATE", At.CREATE)
        await self.route()

    # -- this leg's signalling ---------------------------------------------

    def _media_variables(self, remote_ip: str, remote_port: str) -> Headers:
        ip = self.sip_profile.ip
        return [
            ("rtp_local_sdp_str", _sdp(ip, self.local_media_port, offer=False)),
            ("local_media_ip", ip),
            ("local_media_port", str(self.local_media_port)),
            ("advertised_media_ip", ip),
            ("rtp_use_timer_name", "soft"),
            ("rtp_use_pt", "0"),
            ("rtp_use_ssrc", str(random.randrange(1 << 31, 1 << 32))),
            ("rtp_2833_send_payload", "101"),
            ("rtp_2833_recv_payload", "101"),
            ("remote_media_ip", remote_ip),
            ("remote_media_port", remote_port),
        ]

    def _open_local_media(self) -> None:
        """Inbound leg: answer SDP and RTP before the 183/200 goes out."""
        self.set_vars(
            self._media_variables(
                self.variables.get("remote_media_ip", ""),
                self.variables.get("remote_media_port", ""),
            )
        )

    def on_ring(self) -> None:
        dialog = self.dialog
        if self.direction == "inbound" and dialog is not None:
            dialog.send(dialog.uac, dialog.uac.remote_ringing, "180")

    def on_pre_answer(self) -> None:
        if self.direction != "inbound":
            return
        self._open_local_media()
        self.set_var("endpoint_disposition", "EARLY MEDIA")
        dialog = self.dialog
        if dialog is not None:
            dialog.send(dialog.uac, dialog.uac.remote_early_media, "183")

    def on_answer(self) -> None:
        if self.direction != "inbound":
            return
        if not self.early_media:
            self._open_local_media()
        dialog = self.dialog
        if dialog is not None:
            dialog.send(dialog.uac, dialog.uac.remote_answered, "200")

    def answer(self) -> bool:
        if not super().answer():
            return False
        dialog = self.dialog
        if self.direction == "inbound" and dialog is not None:
            # The ACK of our 200 OK completes the dialog's SIP variables.
            user = self.variables.get("sip_to_user", "")
            ip, port = self.sip_profile.ip, self.sip_profile.port
            branch = new_branch()
            hop = dialog.hop
            if hop is None:
                ack_via = (
                    f"SIP/2.0/UDP {self.variables.get('sip_via_host', '')}:"
                    f"{self.variables.get('sip_via_port', '')};rport;branch={branch}"
                )
            else:
                # Unverified: the proxy relays the ACK as it relayed the INVITE.
                caller = dialog.uac.sip_profile
                ack_via = (
                    f"SIP/2.0/UDP {hop.address};branch={new_branch()},"
                    f"SIP/2.0/UDP {caller.address};rport={caller.port};branch={branch}"
                )
            self.set_vars(
                [
                    ("endpoint_disposition", "ANSWER"),
                    ("sip_to_tag", dialog.to_tag),
                    ("sip_from_tag", dialog.from_tag),
                    ("sip_cseq", dialog.cseq),
                    ("sip_call_id", dialog.call_id),
                    ("sip_full_via", ack_via),
                    ("sip_full_from", self.variables.get("sip_full_from", "")),
                    ("sip_full_to", f"<sip:{user}@{ip}:{port}>;tag={dialog.to_tag}"),
                ]
            )
        return True

    def on_hangup(self) -> None:
        cause = self.hangup_cause or "NORMAL_CLEARING"
        dialog = self.dialog
        if not self._far_end_done:
            if self.answered:
                self.set_var("sip_hangup_disposition", "send_bye")
                if dialog is not None:
                    peer = dialog.peer_of(self)
                    dialog.send(peer, lambda: peer.remote_bye(cause), "BYE")
            elif self.direction == "outbound":
                self.set_vars(
                    [
                        ("sip_hangup_disposition", "send_cancel"),
                        ("sip_invite_failure_status", "487"),
                        ("sip_invite_failure_phrase", "CANCEL"),
                    ]
                )
                if dialog is not None:
                    uas = dialog.uas
                    dialog.send(uas, lambda: uas.remote_cancel(cause), "CANCEL")
                elif self.cancel_pending_invite is not None:
                    self.cancel_pending_invite(cause)
            else:
                status = self.respond_code or cause_to_sip(cause)
                self.set_var("sip_hangup_disposition", "send_refuse")
                if dialog is not None:
                    uac = dialog.uac
                    dialog.send(uac, lambda: uac.remote_refused(status, cause), str(status))
        if self.has_media:
            self.set_vars(_rtp_statistics(self))
        if not self.answered:
            if self.direction == "outbound":
                self.sip_profile.failed_calls_out += 1
            else:
                self.sip_profile.failed_calls_in += 1

    def on_destroy(self) -> None:
        super().on_destroy()
        self.dialog = None
        self.cancel_pending_invite = None

    def send_display_update(self) -> None:
        """An INFO ``message/update_display`` to the far end, which fires RECV_INFO."""
        dialog = self.dialog
        if dialog is None:
            return
        if self.direction == "outbound":
            local = self.variables.get("sip_from_user", "") or (
                self.profile.caller_id_number if self.profile else ""
            )
            remote, contact = self.target.user, "mod_sofia"
        else:
            local = self.variables.get("sip_to_user", "")
            remote, contact = self.variables.get("sip_from_user", ""), local
        ip = self.sip_profile.ip
        far_ip = dialog.peer_of(self).sip_profile.ip
        headers = [
            ("SIP-Content-Type", "message/update_display"),
            ("SIP-From-User", local),
            ("SIP-From-Host", ip),
            ("SIP-To-User", remote),
            ("SIP-To-Host", far_ip),
            ("SIP-Contact-User", contact),
            ("SIP-Contact-Host", ip),
        ]
        receiver = dialog.peer_of(self)
        dialog.send(
            receiver,
            lambda: receiver.fire("RECV_INFO", At.RECV_INFO, before=headers, variables=False),
            "INFO",
        )

    @property
    def media_peer(self) -> Channel | None:
        if self.bridged_to is not None:
            return self.bridged_to
        return self.dialog.peer_of(self) if self.dialog is not None else None

    def send_dtmf(self, digits: str) -> bool:
        dialog = self.dialog
        if dialog is None or not self.has_media:
            return False
        receiver = dialog.peer_of(self)
        receiver.receive_dtmf_string(digits, source="RTP")
        self.set_var("last_dtmf_duration", str(receiver.dtmf_samples(digits)))
        return True

    # -- messages from the far end ------------------------------------------

    def remote_ringing(self) -> None:
        """180 Ringing."""
        self.mark_ring_ready()

    def _learn_far_end(self) -> None:
        """The 183/200 told us who answered: callee id, network address, SIP headers."""
        dialog = self.dialog
        if dialog is None or self.profile is None:
            return
        uas = dialog.uas
        far = uas.sip_profile
        user = self.target.user
        # The 200/183 carries the far end's callee identity (Remote-Party-ID).
        far_profile = uas.profile
        self.profile.callee_id_name = (far_profile.callee_id_name if far_profile else "") or user
        self.profile.callee_id_number = (
            far_profile.callee_id_number if far_profile else ""
        ) or user
        # Responses come from the proxy on the path, if any, else from the far end.
        hop = dialog.hop
        source_ip, source_port = (hop.ip, hop.port) if hop else (far.ip, far.port)
        route: Headers = []
        if hop is not None:
            route = [
                ("sip_invite_route_uri", hop.record_route),
                ("sip_invite_record_route", hop.record_route),
            ]
        self.profile.network_addr = source_ip
        self.set_vars(
            [
                ("sip_local_network_addr", self.sip_profile.ip),
                ("sip_reply_host", source_ip),
                ("sip_reply_port", str(source_port)),
                ("sip_network_ip", source_ip),
                ("sip_network_port", str(source_port)),
                ("sip_user_agent", USER_AGENT),
                ("sip_allow", SIP_ALLOW),
                ("sip_recover_contact", f"<sip:{user}@{far.address};transport=udp>"),
                *route,
                # Our own Via, as the response brings it back (trace 03).
                ("sip_full_via", dialog.caller_via),
                ("sip_recover_via", dialog.caller_via),
                ("sip_from_display", uas.variables.get("sip_from_display", "")),
                ("sip_full_from", uas.variables.get("sip_full_from", "")),
                ("sip_full_to", f"<sip:{user}@{far.address}>;tag={dialog.to_tag}"),
                ("sip_from_user", uas.variables.get("sip_from_user", "")),
                ("sip_from_uri", uas.variables.get("sip_from_uri", "")),
                ("sip_from_host", self.sip_profile.ip),
                ("sip_to_user", user),
                ("sip_to_port", str(far.port)),
                ("sip_to_uri", f"{user}@{far.address}"),
                ("sip_to_host", far.ip),
                ("sip_contact_params", "transport=udp"),
                ("sip_contact_user", user),
                ("sip_contact_port", str(far.port)),
                ("sip_contact_uri", f"{user}@{far.address}"),
                ("sip_contact_host", far.ip),
                ("sip_to_tag", dialog.to_tag),
                ("sip_from_tag", dialog.from_tag),
                ("sip_cseq", dialog.cseq),
                ("sip_call_id", dialog.call_id),
                ("switch_r_sdp", uas.variables.get("rtp_local_sdp_str", "")),
                ("ep_codec_string", "CORE_PCM_MODULE.PCMU@8000h@20i@64000b"),
            ]
        )

    def _activate_media(self) -> None:
        """Negotiated media: RTP variables, then the CODEC events."""
        dialog = self.dialog
        uas = dialog.uas if dialog else None
        self.set_vars(
            [
                ("rtp_use_codec_string", "PCMU,PCMA"),
                ("remote_video_media_flow", "inactive"),
                ("remote_text_media_flow", "inactive"),
                ("remote_audio_media_flow", "sendrecv"),
                ("rtp_audio_recv_pt", "0"),
                *_codec_variables(),
                ("local_media_ip", self.sip_profile.ip),
                ("local_media_port", str(self.local_media_port)),
                ("advertised_media_ip", self.sip_profile.ip),
                *self._media_variables(
                    uas.sip_profile.ip if uas else "",
                    str(uas.local_media_port) if uas else "",
                )[4:],
            ]
        )
        self.set_codecs(PCMU, At.REAL_READ_CODEC, together=True)

    def remote_early_media(self) -> None:
        """183 Session Progress with SDP."""
        if self.has_media:
            return
        self._learn_far_end()
        self.set_var("endpoint_disposition", "EARLY MEDIA")
        self.mark_pre_answered()
        self._activate_media()

    def remote_answered(self) -> None:
        """200 OK to the INVITE."""
        if not self.has_media:
            self._learn_far_end()
            self._activate_media()
        self.mark_answered()

    def remote_refused(self, status: int, cause: str, phrase: str | None = None) -> None:
        """A final error response to the INVITE.

        ``cause`` is the one its Reason header names ("" when it has none);
        ``phrase`` defaults to the standard reason phrase of ``status``.
        """
        phrase = phrase or SIP_PHRASES.get(status, "Unknown")
        result = cause_from_far_end(cause, status)
        self._far_end_done = True
        self.set_vars(
            [
                ("sip_hangup_disposition", "recv_refuse"),
                ("sip_invite_failure_status", str(status)),
                ("sip_invite_failure_phrase", phrase),
                ("sip_term_status", str(status)),
                ("proto_specific_hangup_cause", f"sip:{status}"),
                ("sip_term_cause", str(CAUSE_CODES.get(result, 0))),
            ]
        )
        self.hangup(result)

    def unreachable(self, phrase: str = "Service Unavailable") -> None:
        """The INVITE got no dialog: a local 503 (nobody there, or the far end is full)."""
        self._far_end_done = True
        self.set_vars(
            [
                ("sip_call_id", f"{ids.new_uuid()[:8]}-648d-1240-13b9-f2ec5493930f"),
                ("sip_local_network_addr", self.sip_profile.ip),
                ("sip_reply_port", "0"),
                ("sip_network_port", "0"),
                ("sip_hangup_disposition", "recv_refuse"),
                ("sip_invite_failure_status", "503"),
                ("sip_invite_failure_phrase", phrase),
                ("sip_term_status", "503"),
                ("proto_specific_hangup_cause", "sip:503"),
                ("sip_term_cause", "41"),
            ]
        )
        self.hangup("NORMAL_TEMPORARY_FAILURE")

    def remote_cancel(self, cause: str) -> None:
        """CANCEL of our INVITE: the caller gave up."""
        if self.answered:
            # Our 200 OK crossed the CANCEL: the caller ends the call with a BYE instead.
            self.remote_bye(cause)
            return
        self._far_end_done = True
        self.set_vars(
            [
                ("sip_hangup_disposition", "recv_cancel"),
                ("sip_invite_failure_status", "487"),
                ("sip_invite_failure_phrase", "CANCEL"),
                ("sip_reason", reason_header(cause)),
                ("sip_term_status", "487"),
                ("proto_specific_hangup_cause", "sip:487"),
                ("sip_term_cause", "487"),
            ]
        )
        # A CANCEL ends the call as ORIGINATOR_CANCEL whatever its Reason says (trace 10).
        self.hangup("ORIGINATOR_CANCEL")

    def remote_bye(self, cause: str) -> None:
        """BYE from the far end."""
        self._far_end_done = True
        result = cause_from_far_end(cause, 200)
        self.set_vars(
            [
                ("sip_reason", reason_header(cause)),
                ("sip_term_status", "200"),
                ("proto_specific_hangup_cause", "sip:200"),
                ("sip_term_cause", str(CAUSE_CODES.get(cause, 16))),
            ]
        )
        self.hangup(result)
        self.set_var("sip_hangup_disposition", "recv_bye")


def _codec_variables() -> Headers:
    return [
        ("rtp_use_codec_name", "PCMU"),
        ("rtp_use_codec_rate", "8000"),
        ("rtp_use_codec_ptime", "20"),
        ("rtp_use_codec_channels", "1"),
        ("rtp_last_audio_codec_string", "PCMU@8000h@20i@1c"),
        ("read_codec", "PCMU"),
        ("original_read_codec", "PCMU"),
        ("read_rate", "8000"),
        ("original_read_rate", "8000"),
        ("write_codec", "PCMU"),
        ("write_rate", "8000"),
        ("dtmf_type", "rfc2833"),
    ]


def _rtp_statistics(channel: Channel) -> tuple[tuple[str, str], ...]:
    """The RTP counters a media leg reports at hangup: 20 ms PCMU packets both ways."""
    times = channel.profile.times if channel.profile else None
    start = (times.answered or times.progress_media) if times else 0
    ms = max(channel.now_us() - start, 0) // 1000 if start else 0
    return _rtp_counters(ms // 20)


@lru_cache(maxsize=1024)
def _rtp_counters(packets: int) -> tuple[tuple[str, str], ...]:
    # Cached: calls of the same length report the same counters.
    names = [
        ("in_raw_bytes", packets * 172),
        ("in_media_bytes", packets * 160),
        ("in_packet_count", packets),
        ("in_media_packet_count", packets),
        ("in_skip_packet_count", 0),
        ("in_jitter_packet_count", 0),
        ("in_dtmf_packet_count", 0),
        ("in_cng_packet_count", 0),
        ("in_flush_packet_count", 0),
        ("in_largest_jb_size", 0),
    ]
    out = [(f"rtp_audio_{name}", str(value)) for name, value in names]
    out += [
        ("rtp_audio_in_jitter_min_variance", "0.00"),
        ("rtp_audio_in_jitter_max_variance", "0.00"),
        ("rtp_audio_in_jitter_loss_rate", "0.00"),
        ("rtp_audio_in_jitter_burst_rate", "0.00"),
        ("rtp_audio_in_mean_interval", "20.00" if packets else "0.00"),
        ("rtp_audio_in_flaw_total", "0"),
        ("rtp_audio_in_quality_percentage", "100.00"),
        ("rtp_audio_in_mos", "4.50"),
    ]
    outbound = [
        ("out_raw_bytes", packets * 172),
        ("out_media_bytes", packets * 160),
        ("out_packet_count", packets),
        ("out_media_packet_count", packets),
        ("out_skip_packet_count", 0),
        ("out_dtmf_packet_count", 0),
        ("out_cng_packet_count", 0),
        ("rtcp_packet_count", 0),
        ("rtcp_octet_count", 0),
    ]
    out += [(f"rtp_audio_{name}", str(value)) for name, value in outbound]
    return tuple(out)


def _refuse_unreachable(uac: SofiaChannel, phrase: str) -> None:
    if uac.is_up:
        uac.unreachable(phrase)
