#!/usr/bin/env python3
"""A hostile XMPP client (slixmpp) for spheres' security tests: a sphere member, or a stranger
with an account, who sends whatever stanza a test scripts.

  hostile.py JID PASSWORD HOST PORT CA_FILE

Logs in over StartTLS trusting CA_FILE, then reads one JSON command a line on stdin:
  {"op": "join", "room": ROOM, "nick": NICK}              join a room (no history)
  {"op": "groupchat", "room": ROOM, "body": B, "xml": X}  a groupchat message carrying X
  {"op": "private", "to": ROOM/NICK, "xml": X}            a MUC private message carrying X
  {"op": "message", "to": JID, "xml": X}                  a normal message carrying X
  {"op": "items", "jid": JID, "node": NODE}               reads a PEP node: prints
                                                          {"event": "items", "texts": [...]}, the text
                                                          of each item's payload
X is raw XML (any namespace), or a list of such, added as it is: forged payloads are the
point. Prints JSON lines
on stdout: {"event": "online"}, then {"event": "done", "op": OP} after each command, and
{"event": "error", "op": OP, "error": ...} when one fails. Runs until stdin closes.
"""
import asyncio
import json
import sys
import xml.etree.ElementTree as ET

import slixmpp


def emit(**kw):
    print(json.dumps(kw), flush=True)


class Hostile(slixmpp.ClientXMPP):
    def __init__(self, jid, password):
        super().__init__(jid, password)
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0060")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_auth", lambda _: emit(event="failed_auth"))

    async def start(self, _event):
        self.send_presence()
        await self.get_roster()
        emit(event="online", jid=str(self.boundjid))
        asyncio.ensure_future(self.commands())

    async def commands(self):
        loop = asyncio.get_event_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                self.disconnect()
                return
            cmd = json.loads(line)
            try:
                await self.run(cmd)
                emit(event="done", op=cmd["op"])
            except Exception as e:  # a test reads the failure, it does not crash the peer
                emit(event="error", op=cmd["op"], error=repr(e))

    async def run(self, cmd):
        op = cmd["op"]
        if op == "join":
            await self.plugin["xep_0045"].join_muc_wait(cmd["room"], cmd["nick"], maxstanzas=0)
            return
        if op == "items":
            r = await self.plugin["xep_0060"].get_items(cmd["jid"], cmd["node"])
            texts = []
            for item in r["pubsub"]["items"]:
                payload = list(item.xml)
                texts.append(payload[0].text if payload else "")
            emit(event="items", texts=texts)
            return
        if op == "groupchat":
            msg = self.make_message(mto=cmd["room"], mbody=cmd.get("body"), mtype="groupchat")
        elif op == "private":
            msg = self.make_message(mto=cmd["to"], mtype="chat")
            msg.xml.append(ET.fromstring("<x xmlns='http://jabber.org/protocol/muc#user'/>"))
        elif op == "message":
            msg = self.make_message(mto=cmd["to"], mbody=cmd.get("body"), mtype="normal")
        else:
            raise ValueError("unknown op " + op)
        xml = cmd.get("xml") or []
        for x in [xml] if isinstance(xml, str) else xml:
            msg.xml.append(ET.fromstring(x))
        msg.send()


def main():
    jid, password, host, port, ca = sys.argv[1:6]
    xmpp = Hostile(jid, password)
    xmpp.ca_certs = ca
    xmpp.enable_direct_tls = False
    xmpp.connect(host, int(port))
    asyncio.get_event_loop().run_until_complete(xmpp.disconnected)


if __name__ == "__main__":
    main()
