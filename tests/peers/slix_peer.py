#!/usr/bin/env python3
"""An independent XMPP client (slixmpp) for spheres' interop tests.

  slix_peer.py JID PASSWORD HOST PORT CA_FILE

Logs in over StartTLS, trusting CA_FILE, announces presence, then echoes every chat message
back to its sender as "echo: <body>". Prints JSON lines on stdout:
{"event": "online"}, {"event": "message", "from": ..., "body": ...}, {"event": "failed_auth"}.
Runs until killed.
"""
import asyncio
import json
import sys

import slixmpp


def emit(**kw):
    print(json.dumps(kw), flush=True)


class Echo(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", lambda _: emit(event="failed_auth"))

    async def start(self, _event):
        self.send_presence()
        await self.get_roster()
        emit(event="online", jid=str(self.boundjid))

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            emit(event="message", sender=str(msg["from"]), body=msg["body"])
            msg.reply("echo: " + msg["body"]).send()


def main():
    jid, password, host, port, ca = sys.argv[1:6]
    xmpp = Echo(jid, password)
    xmpp.ca_certs = ca
    xmpp.enable_direct_tls = False
    xmpp.connect(host, int(port))
    asyncio.get_event_loop().run_forever()


if __name__ == "__main__":
    main()
