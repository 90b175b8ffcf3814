#!/usr/bin/env python3
"""An independent XMPP client (slixmpp) for spheres' interop tests.

  slix_peer.py JID PASSWORD HOST PORT CA_FILE [ROOM]

Logs in over StartTLS, trusting CA_FILE, announces presence, then echoes every chat message
back to its sender as "echo: <body>". With ROOM, also joins that room as "slix" and reads
spheres share announcements the way any third-party client could: it takes the .torrent out
of the <share xmlns='urn:spheres:0'/> payload, has libtorrent parse it, and answers in the
room "got NAME". Prints JSON lines on stdout:
{"event": "online"}, {"event": "joined"}, {"event": "message", "sender": ..., "body": ...},
{"event": "share", "id": ..., "name": ..., "infohash": ..., "files": ..., "body": ...,
"torrent": BASE64},
{"event": "failed_auth"}. Runs until killed.
"""
import asyncio
import base64
import json
import sys

import slixmpp

NS = "urn:spheres:0"


def emit(**kw):
    print(json.dumps(kw), flush=True)


def read_share(msg):
    """The share announcement in a groupchat message, read with nothing but the spec."""
    share = msg.xml.find("{%s}share" % NS)
    if share is None:
        return None
    import libtorrent as lt

    torrent = base64.b64decode(share.findtext("{%s}torrent" % NS) or "")
    info = lt.torrent_info(lt.bdecode(torrent))
    return dict(
        torrent=base64.b64encode(torrent).decode(),
        id=share.get("id"),
        name=share.get("name"),
        size=int(share.get("size")),
        files=info.num_files(),
        infohash=str(info.info_hash()),
        magnet=share.findtext("{%s}magnet" % NS),
        body=msg["body"],
    )


class Echo(slixmpp.ClientXMPP):
    def __init__(self, jid, password, room=None):
        super().__init__(jid, password)
        self.room = room
        self.register_plugin("xep_0045")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("groupchat_message", self.on_groupchat)
        self.add_event_handler("failed_auth", lambda _: emit(event="failed_auth"))

    async def start(self, _event):
        self.send_presence()
        await self.get_roster()
        emit(event="online", jid=str(self.boundjid))
        if self.room:
            await self.plugin["xep_0045"].join_muc_wait(self.room, "slix", maxstanzas=0)
            emit(event="joined")

    def on_groupchat(self, msg):
        if msg["mucnick"] == "slix":
            return
        share = read_share(msg)
        if share is not None:
            emit(event="share", **share)
            self.send_message(mto=self.room, mbody="got " + share["name"], mtype="groupchat")

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            emit(event="message", sender=str(msg["from"]), body=msg["body"])
            msg.reply("echo: " + msg["body"]).send()


def main():
    jid, password, host, port, ca = sys.argv[1:6]
    room = sys.argv[6] if len(sys.argv) > 6 else None
    xmpp = Echo(jid, password, room)
    xmpp.ca_certs = ca
    xmpp.enable_direct_tls = False
    xmpp.connect(host, int(port))
    asyncio.get_event_loop().run_forever()


if __name__ == "__main__":
    main()
