#!/usr/bin/env python3
"""An independent Jingle peer for spheres' call interop test: slixmpp (XMPP, XEP-0353 ringing
messages) and aiortc (WebRTC in Python: ICE, DTLS-SRTP, Opus and VP8), with its own SDP <->
Jingle mapping written here from XEP-0166/0167/0176/0320/0338/0293/0294/0339, not spheres'.

  jingle_peer.py JID PASSWORD HOST PORT CA_FILE CALLEE

Logs in over StartTLS (trusting CA_FILE), accepts contacts, prints {"event": "online"}. Then
reads commands on stdin, one per line:
  call    rings CALLEE (a proposal to their bare address, audio and video); on their device's
          proceed, sends its offer (session-initiate, candidates inside) and takes their answer
          and trickled candidates.
  hangup  ends the current call (session-terminate, success).
  join ROOM  joins a room's call (XEP-0272, Muji): enters ROOM as "dave" saying, in its room
          presence, that it is in the call with audio and video; once the room reflects that,
          opens a session (tagged <muji room=ROOM/>) with a participant already in the call,
          as Dino does (the newcomer opens them), and prints {"event": "joined"}.
  leave   leaves the room's call (an unavailable presence to the room), prints {"event": "left"}.
It answers any call that rings it (proceed, then session-accept once the offer came).
Media: a 440 Hz tone and aiortc's test video. Prints {"event": "media", "video_frames": N,
"loudest": X} once 30 video frames and audible sound arrived from the other side,
{"event": "terminated", "reason": R} when the other side ends the call, and {"event":
"ringing"} when the other side's device rings. No STUN or TURN server: nothing leaves the
machine.
"""
import array
import asyncio
import fractions
import json
import math
import sys
import time
import uuid
import xml.etree.ElementTree as ET

import av
import slixmpp
from aiortc import (MediaStreamTrack, RTCConfiguration, RTCPeerConnection,
                    RTCSessionDescription)
from aiortc.mediastreams import VideoStreamTrack
from aiortc.sdp import candidate_from_sdp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

JMI = "urn:xmpp:jingle-message:0"
JINGLE = "urn:xmpp:jingle:1"
RTP = "urn:xmpp:jingle:apps:rtp:1"
ICE = "urn:xmpp:jingle:transports:ice-udp:1"
DTLS = "urn:xmpp:jingle:apps:dtls:0"
GROUP = "urn:xmpp:jingle:apps:grouping:0"
FB = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0"
HDREXT = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0"
SSMA = "urn:xmpp:jingle:apps:rtp:ssma:0"
MUC = "http://jabber.org/protocol/muc"
MUC_USER = "http://jabber.org/protocol/muc#user"
MUJI = "urn:xmpp:jingle:muji:0"


def emit(**kw):
    print(json.dumps(kw), flush=True)


class Tone(MediaStreamTrack):
    """A 440 Hz tone, 20 ms a frame, paced as a microphone would be."""
    kind = "audio"

    def __init__(self):
        super().__init__()
        self.sent = 0
        self.start = None

    async def recv(self):
        if self.start is None:
            self.start = time.time()
        due = self.start + self.sent / 48000 - time.time()
        if due > 0:
            await asyncio.sleep(due)
        n = 960
        samples = array.array("h", (int(8000 * math.sin(2 * math.pi * 440 * (self.sent + i) / 48000)) for i in range(n)))
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(samples.tobytes())
        frame.pts = self.sent
        frame.sample_rate = 48000
        frame.time_base = fractions.Fraction(1, 48000)
        self.sent += n
        return frame


# ---------- SDP -> Jingle ----------

def sdp_to_jingle(sdp, jingle):
    """Fills `jingle` with one content per m= section of `sdp` (aiortc's own)."""
    sections, bundle = [], []
    for line in sdp.splitlines():
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        elif line.startswith("a=group:BUNDLE "):
            bundle = line.split()[1:]
    for sec in sections:
        media = sec[0][2:].split()[0]
        attrs = [l[2:] for l in sec if l.startswith("a=")]
        get = lambda name: next((a.split(":", 1)[1] for a in attrs if a.startswith(name + ":")), None)
        mid = get("mid")
        direction = next((a for a in attrs if a in ("sendrecv", "sendonly", "recvonly", "inactive")), "sendrecv")
        senders = {"sendrecv": "both", "inactive": "none"}.get(direction, "initiator" if direction == "sendonly" else "responder")
        content = ET.SubElement(jingle, "{%s}content" % JINGLE, creator="initiator", name=mid, senders=senders)
        desc = ET.SubElement(content, "{%s}description" % RTP, media=media)
        payloads = {}
        for a in attrs:
            if a.startswith("rtpmap:"):
                pid, codec = a[7:].split(" ", 1)
                parts = codec.split("/")
                p = ET.SubElement(desc, "{%s}payload-type" % RTP, id=pid, name=parts[0], clockrate=parts[1])
                if len(parts) > 2:
                    p.set("channels", parts[2])
                payloads[pid] = p
        for a in attrs:
            if a.startswith("fmtp:"):
                pid, params = a[5:].split(" ", 1)
                for kv in params.split(";"):
                    k, _, v = kv.strip().partition("=")
                    ET.SubElement(payloads[pid], "{%s}parameter" % RTP, name=k, value=v)
            elif a.startswith("rtcp-fb:"):
                pid, fb = a[8:].split(" ", 1)
                kind, _, sub = fb.partition(" ")
                e = ET.SubElement(payloads[pid], "{%s}rtcp-fb" % FB, type=kind)
                if sub:
                    e.set("subtype", sub)
            elif a.startswith("extmap:"):
                eid, uri = a[7:].split(" ", 1)
                ET.SubElement(desc, "{%s}rtp-hdrext" % HDREXT, id=eid.split("/")[0], uri=uri)
        sources = {}
        for a in attrs:
            if a.startswith("ssrc:"):
                ssrc, kv = a[5:].split(" ", 1)
                k, _, v = kv.partition(":")
                if ssrc not in sources:
                    sources[ssrc] = ET.SubElement(desc, "{%s}source" % SSMA, ssrc=ssrc)
                ET.SubElement(sources[ssrc], "{%s}parameter" % SSMA, name=k, value=v)
        msid = get("msid")
        if msid:
            for s in sources.values():
                ET.SubElement(s, "{%s}parameter" % SSMA, name="msid", value=msid)
        if "rtcp-mux" in attrs:
            ET.SubElement(desc, "{%s}rtcp-mux" % RTP)
        t = ET.SubElement(content, "{%s}transport" % ICE, ufrag=get("ice-ufrag"), pwd=get("ice-pwd"))
        hash_, value = get("fingerprint").split(" ", 1)
        f = ET.SubElement(t, "{%s}fingerprint" % DTLS, hash=hash_, setup=get("setup"))
        f.text = value
        for i, a in enumerate(x for x in attrs if x.startswith("candidate:")):
            f_ = a[len("candidate:"):].split()
            c = ET.SubElement(t, "{%s}candidate" % ICE, foundation=f_[0], component=f_[1], protocol=f_[2].lower(),
                              priority=f_[3], ip=f_[4], port=f_[5], type=f_[7], generation="0", network="0",
                              id="%s-%d" % (mid, i))
            rest = dict(zip(f_[8::2], f_[9::2]))
            if "raddr" in rest:
                c.set("rel-addr", rest["raddr"])
                c.set("rel-port", rest["rport"])
    if bundle:
        g = ET.SubElement(jingle, "{%s}group" % GROUP, semantics="BUNDLE")
        for name in bundle:
            ET.SubElement(g, "{%s}content" % GROUP, name=name)


# ---------- Jingle -> SDP ----------

def candidate_line(c):
    line = "candidate:%s %s %s %s %s %s typ %s" % (c.get("foundation"), c.get("component"), c.get("protocol"),
                                                   c.get("priority"), c.get("ip"), c.get("port"), c.get("type"))
    if c.get("rel-addr"):
        line += " raddr %s rport %s" % (c.get("rel-addr"), c.get("rel-port"))
    return line


def jingle_to_sdp(jingle, by_initiator):
    out = ["v=0", "o=- %d 1 IN IP4 0.0.0.0" % int(time.time()), "s=-", "t=0 0"]
    g = jingle.find("{%s}group" % GROUP)
    if g is not None:
        out.append("a=group:BUNDLE " + " ".join(c.get("name") for c in g.findall("{%s}content" % GROUP)))
    out.append("a=msid-semantic:WMS *")
    for content in jingle.findall("{%s}content" % JINGLE):
        desc = content.find("{%s}description" % RTP)
        t = content.find("{%s}transport" % ICE)
        pts = desc.findall("{%s}payload-type" % RTP)
        out.append("m=%s 9 UDP/TLS/RTP/SAVPF %s" % (desc.get("media"), " ".join(p.get("id") for p in pts)))
        out.append("c=IN IP4 0.0.0.0")
        out.append("a=mid:" + content.get("name"))
        senders = content.get("senders", "both")
        mine = "initiator" if by_initiator else "responder"
        out.append("a=" + {"both": "sendrecv", "none": "inactive"}.get(senders, "sendonly" if senders == mine else "recvonly"))
        out.append("a=ice-ufrag:" + t.get("ufrag"))
        out.append("a=ice-pwd:" + t.get("pwd"))
        f = t.find("{%s}fingerprint" % DTLS)
        out.append("a=fingerprint:%s %s" % (f.get("hash"), f.text.strip()))
        out.append("a=setup:" + f.get("setup"))
        if desc.find("{%s}rtcp-mux" % RTP) is not None:
            out.append("a=rtcp-mux")
        for h in desc.findall("{%s}rtp-hdrext" % HDREXT):
            out.append("a=extmap:%s %s" % (h.get("id"), h.get("uri")))
        for p in pts:
            codec = "%s/%s" % (p.get("name"), p.get("clockrate"))
            if p.get("channels"):
                codec += "/" + p.get("channels")
            out.append("a=rtpmap:%s %s" % (p.get("id"), codec))
            params = [("%s=%s" % (x.get("name"), x.get("value"))) if x.get("name") else x.get("value")
                      for x in p.findall("{%s}parameter" % RTP)]
            if params:
                out.append("a=fmtp:%s %s" % (p.get("id"), ";".join(params)))
            for fb in p.findall("{%s}rtcp-fb" % FB):
                out.append("a=rtcp-fb:%s %s" % (p.get("id"), " ".join(x for x in (fb.get("type"), fb.get("subtype")) if x)))
        for s in desc.findall("{%s}source" % SSMA):
            for x in s.findall("{%s}parameter" % SSMA):
                out.append("a=ssrc:%s %s:%s" % (s.get("ssrc"), x.get("name"), x.get("value")))
        for c in t.findall("{%s}candidate" % ICE):
            out.append("a=" + candidate_line(c))
    return "\r\n".join(out) + "\r\n"


class Peer(slixmpp.ClientXMPP):
    def __init__(self, jid, password, callee):
        super().__init__(jid, password)
        self.callee = callee
        self.pc = None
        self.sid = None
        self.other = None  # the other side's full JID
        self.initiator = False
        self.pending = []  # trickled candidates before the other side's description
        self.described = False
        self.room = None  # the room whose call we are in
        self.in_call = {}  # the room's participants in its call: nick -> real full JID
        self.opened = False
        self.register_plugin("xep_0030")
        self.add_event_handler("session_start", self.start)
        # slixmpp's "message" event is for messages with a body; ringing messages have none.
        for name in ("propose", "proceed", "reject", "retract", "ringing"):
            self.register_handler(Callback("jmi " + name, MatchXPath("{jabber:client}message/{%s}%s" % (JMI, name)),
                                           self.on_message))
        self.register_handler(Callback("jingle", MatchXPath("{jabber:client}iq/{%s}jingle" % JINGLE), self.on_jingle))
        self.register_handler(Callback("room presence", MatchXPath("{jabber:client}presence/{%s}x" % MUC_USER),
                                       self.on_room_presence))

    async def start(self, _event):
        self.send_presence()
        await self.get_roster()
        emit(event="online", jid=str(self.boundjid))
        loop = asyncio.get_event_loop()
        while True:
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if not line:
                return
            if line == "call":
                self.call()
            elif line == "hangup":
                await self.hang_up()
            elif line.startswith("join "):
                self.join(line[len("join "):].strip())
            elif line == "leave":
                await self.leave()

    def jmi(self, to, name, **children):
        m = self.make_message(mto=to, mtype="chat")
        e = ET.Element("{%s}%s" % (JMI, name), id=self.sid)
        for media in children.get("media", []):
            ET.SubElement(e, "{%s}description" % RTP, media=media)
        m.append(e)
        m.send()

    def call(self):
        self.sid = str(uuid.uuid4())
        self.initiator = True
        self.jmi(self.callee, "propose", media=["audio", "video"])

    def join(self, room):
        self.room, self.opened, self.in_call = room, False, {}
        p = self.make_presence(pto="%s/dave" % room)
        p.append(ET.Element("{%s}x" % MUC))
        muji = ET.Element("{%s}muji" % MUJI)
        for media in ("audio", "video"):
            c = ET.SubElement(muji, "{%s}content" % JINGLE, creator="initiator", name=media)
            ET.SubElement(c, "{%s}description" % RTP, media=media)
        p.append(muji)
        p.send()

    def on_room_presence(self, pres):
        if self.room is None or pres["from"].bare != self.room:
            return
        nick = pres["from"].resource
        x = pres.xml.find("{%s}x" % MUC_USER)
        item = x.find("{%s}item" % MUC_USER)
        codes = {s.get("code") for s in x.findall("{%s}status" % MUC_USER)}
        muji = pres.xml.find("{%s}muji" % MUJI)
        in_call = (pres["type"] != "unavailable" and muji is not None and muji.find("{%s}preparing" % MUJI) is None
                   and muji.find("{%s}content" % JINGLE) is not None)
        if "110" in codes:
            if not self.opened and pres["type"] != "unavailable":
                # In: open a session with someone already in the call (the newcomer opens).
                self.opened = True
                emit(event="joined", in_call=sorted(self.in_call.values()))
                if self.in_call and self.pc is None:
                    self.sid, self.initiator = str(uuid.uuid4()), True
                    self.other = sorted(self.in_call.values())[0]
                    self.new_pc()
                    self.spawn(self.send_description("session-initiate"))
            return
        if in_call and item is not None and item.get("jid"):
            self.in_call[nick] = item.get("jid")
        else:
            self.in_call.pop(nick, None)

    async def leave(self):
        p = self.make_presence(pto="%s/dave" % self.room, ptype="unavailable")
        p.send()
        self.room = None
        await self.close()
        emit(event="left")

    def new_pc(self):
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(Tone())
        pc.addTrack(VideoStreamTrack())
        got = {"video": 0, "loudest": 0, "said": False}

        async def consume(track):
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                if track.kind == "video":
                    got["video"] += 1
                else:
                    pcm = array.array("h", bytes(frame.planes[0]))
                    got["loudest"] = max(got["loudest"], max((abs(s) for s in pcm), default=0) / 32768)
                if not got["said"] and got["video"] >= 30 and got["loudest"] > 0.01:
                    got["said"] = True
                    emit(event="media", video_frames=got["video"], loudest=got["loudest"])

        @pc.on("track")
        def on_track(track):
            asyncio.ensure_future(consume(track))

        self.pc = pc
        return pc

    async def send_description(self, action):
        pc = self.pc
        if action == "session-initiate":
            await pc.setLocalDescription(await pc.createOffer())
        else:
            await pc.setLocalDescription(await pc.createAnswer())
        iq = self.make_iq_set(ito=self.other)
        j = ET.Element("{%s}jingle" % JINGLE, action=action, sid=self.sid)
        j.set("initiator" if action == "session-initiate" else "responder", str(self.boundjid))
        if self.room and action == "session-initiate":
            ET.SubElement(j, "{%s}muji" % MUJI, room=self.room)
        sdp_to_jingle(pc.localDescription.sdp, j)
        iq.append(j)
        await iq.send()

    async def take_description(self, jingle, kind):
        sdp = jingle_to_sdp(jingle, by_initiator=(kind == "offer"))
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        self.described = True
        for c in self.pending:
            await self.pc.addIceCandidate(c)
        self.pending = []

    def on_message(self, msg):
        for name in ("propose", "proceed", "reject", "retract", "ringing"):
            e = msg.xml.find("{%s}%s" % (JMI, name))
            if e is None:
                continue
            sid = e.get("id")
            if name == "propose" and self.pc is None:
                # Answered at once: proceed to the device that rang.
                self.sid, self.other, self.initiator = sid, str(msg["from"]), False
                self.new_pc()
                self.jmi(self.other, "proceed")
            elif name == "proceed" and sid == self.sid and self.initiator:
                self.other = str(msg["from"])
                self.new_pc()
                emit(event="proceeded")
                self.spawn(self.send_description("session-initiate"))
            elif name == "ringing" and sid == self.sid:
                emit(event="ringing")
            elif name in ("reject", "retract") and sid == self.sid:
                emit(event="terminated", reason=name)

    def on_jingle(self, iq):
        j = iq.xml.find("{%s}jingle" % JINGLE)
        if j.get("sid") != self.sid or str(iq["from"]) != self.other:
            err = iq.reply()
            err.error()
            err["error"]["condition"] = "item-not-found"
            err.send()
            return
        iq.reply().send()
        self.spawn(self.act(j))

    def spawn(self, work):
        """Runs `work`; a failure is printed (stderr) and said ({"event": "failed"})."""
        async def run():
            try:
                await work
            except Exception as e:
                import traceback
                traceback.print_exc()
                emit(event="failed", error=repr(e))
        asyncio.ensure_future(run())

    async def act(self, j):
        action = j.get("action")
        if action == "session-initiate":
            await self.take_description(j, "offer")
            await self.send_description("session-accept")
        elif action == "session-accept":
            await self.take_description(j, "answer")
        elif action == "transport-info":
            for content in j.findall("{%s}content" % JINGLE):
                for c in content.findall("{%s}transport/{%s}candidate" % (ICE, ICE)):
                    cand = candidate_from_sdp(candidate_line(c)[len("candidate:"):])
                    cand.sdpMid = content.get("name")
                    if self.described:
                        await self.pc.addIceCandidate(cand)
                    else:
                        self.pending.append(cand)
        elif action == "session-terminate":
            reason = j.find("{%s}reason" % JINGLE)
            emit(event="terminated", reason=reason[0].tag.split("}")[1] if reason is not None and len(reason) else "")
            await self.close()

    async def close(self):
        if self.pc:
            await self.pc.close()
        self.pc, self.sid, self.described, self.pending = None, None, False, []

    async def hang_up(self):
        iq = self.make_iq_set(ito=self.other)
        j = ET.Element("{%s}jingle" % JINGLE, action="session-terminate", sid=self.sid)
        r = ET.SubElement(j, "{%s}reason" % JINGLE)
        ET.SubElement(r, "{%s}success" % JINGLE)
        iq.append(j)
        await iq.send()
        await self.close()
        emit(event="hung_up")


def main():
    jid, password, host, port, ca, callee = sys.argv[1:7]
    xmpp = Peer(jid, password, callee)
    xmpp.ca_certs = ca
    xmpp.enable_direct_tls = False
    xmpp.connect(host, int(port))
    asyncio.get_event_loop().run_forever()


if __name__ == "__main__":
    main()
