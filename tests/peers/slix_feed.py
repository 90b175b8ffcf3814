#!/usr/bin/env python3
"""An independent XEP-0277 client (slixmpp) for spheres' feed interop test.

  slix_feed.py JID PASSWORD HOST PORT CA_FILE OWNER

Logs in over StartTLS (trusting CA_FILE), accepts contacts, advertises
urn:xmpp:microblog:0+notify (XEP-0115/0163), prints {"event": "online"}, then waits for a
line on stdin. On it: reads OWNER's microblog node (XEP-0060 items) with nothing but
XEP-0277 and ElementTree, prints {"event": "items", "posts": [{id, title, author, replies}]},
comments under OWNER's first post on the comments node its `replies` link names (an Atom
entry with thr:in-reply-to) and prints {"event": "commented", "node": ...}, then publishes a
post of its own to its own microblog node and prints {"event": "posted", "id": ...}. Posts it
is told of are printed as {"event": "notified", "from": ..., "id": ..., "title": ...}.
Runs until killed.
"""
import asyncio
import json
import sys
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.plugins.xep_0004 import Form

ATOM = "http://www.w3.org/2005/Atom"
THR = "http://purl.org/syndication/thread/1.0"
MICROBLOG = "urn:xmpp:microblog:0"


def emit(**kw):
    print(json.dumps(kw), flush=True)


def entry(title, author, reply_to=None):
    e = ET.Element("{%s}entry" % ATOM)
    ET.SubElement(e, "{%s}title" % ATOM).text = title
    c = ET.SubElement(e, "{%s}content" % ATOM, type="text")
    c.text = title
    ET.SubElement(e, "{%s}published" % ATOM).text = "2026-11-30T12:00:00Z"
    ET.SubElement(e, "{%s}updated" % ATOM).text = "2026-11-30T12:00:00Z"
    a = ET.SubElement(e, "{%s}author" % ATOM)
    ET.SubElement(a, "{%s}uri" % ATOM).text = "xmpp:" + author
    if reply_to:
        ET.SubElement(e, "{%s}in-reply-to" % THR, ref=reply_to)
    return e


def read_post(item):
    e = item.xml.find("{%s}entry" % ATOM)
    if e is None:
        return None
    replies = None
    for link in e.findall("{%s}link" % ATOM):
        if link.get("rel") == "replies":
            href = link.get("href", "")
            # xmpp:SERVICE?;node=NODE, percent-encoded, as Movim reads it.
            replies = urllib.parse.unquote(href.split(";node=", 1)[-1])
    author = e.findtext("{%s}author/{%s}uri" % (ATOM, ATOM)) or ""
    return dict(id=item["id"], title=e.findtext("{%s}title" % ATOM), author=author, replies=replies)


class Feed(slixmpp.ClientXMPP):
    def __init__(self, jid, password, owner):
        super().__init__(jid, password)
        self.owner = owner
        for p in ("xep_0030", "xep_0060", "xep_0115", "xep_0163"):
            self.register_plugin(p)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("pubsub_publish", self.on_publish)

    async def start(self, _event):
        self.plugin["xep_0163"].add_interest(MICROBLOG)
        self.send_presence()
        await self.get_roster()
        emit(event="online", jid=str(self.boundjid))
        await asyncio.get_event_loop().run_in_executor(None, sys.stdin.readline)
        await self.act()

    async def act(self):
        answer = await self.plugin["xep_0060"].get_items(self.owner, MICROBLOG)
        posts = [p for p in (read_post(i) for i in answer["pubsub"]["items"]) if p]
        emit(event="items", posts=posts)
        first = posts[0]
        await self.plugin["xep_0060"].publish(
            self.owner, first["replies"], id=str(uuid.uuid4()),
            payload=entry("Lovely, from slixmpp", self.boundjid.bare, first["id"]))
        emit(event="commented", node=first["replies"])
        options = Form()
        options["type"] = "submit"
        options.add_field("FORM_TYPE", ftype="hidden",
                          value="http://jabber.org/protocol/pubsub#publish-options")
        options.add_field("pubsub#max_items", value="max")
        options.add_field("pubsub#access_model", value="presence")
        mine = str(uuid.uuid4())
        await self.plugin["xep_0060"].publish(
            self.boundjid.bare, MICROBLOG, id=mine,
            payload=entry("Posted from slixmpp", self.boundjid.bare), options=options)
        emit(event="posted", id=mine)

    def on_publish(self, msg):
        item = msg["pubsub_event"]["items"]["item"]
        post = read_post(item)
        if post:
            emit(event="notified", **{"from": str(msg["from"])}, id=post["id"], title=post["title"])


def main():
    jid, password, host, port, ca, owner = sys.argv[1:7]
    xmpp = Feed(jid, password, owner)
    xmpp.ca_certs = ca
    xmpp.enable_direct_tls = False
    xmpp.connect(host, int(port))
    asyncio.get_event_loop().run_forever()


if __name__ == "__main__":
    main()
