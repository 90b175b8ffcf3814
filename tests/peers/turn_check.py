#!/usr/bin/python3
"""turn_check.py — asks a TURN server for a relay (an allocation) with given credentials, using
aioice's TURN client (a TURN implementation we did not write), and prints one JSON line:
{"ok": true, "relay": "HOST:PORT"} or {"ok": false, "error": "..."}.

  turn_check.py HOST PORT --user USER --password PASSWORD [--peer ADDR:PORT]
  turn_check.py HOST PORT --secret SECRET --expires-in SECONDS [--name NAME] [--peer ADDR:PORT]
      mints TURN REST credentials (draft-uberti-behave-turn-rest) as Prosody's
      mod_turn_external does: USER = expiry time (":NAME" appended when given), PASSWORD =
      base64(HMAC-SHA1(SECRET, USER)). A negative SECONDS makes credentials that expired.
  --peer: then sends a datagram to ADDR:PORT through the relay (binding a channel to it, which
      the server refuses for peers it does not relay to): "peer": "sent" or "refused: ...".
  --echo: and waits up to 5 s for the peer's answer, sent to the relayed address: "echo":
      "heard" or "nothing".

Exit 0 whatever the answer (the JSON says it); 2 on bad arguments."""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import time

from aioice import turn


def mint(secret, expires_in, name):
    user = str(int(time.time()) + expires_in)
    if name:
        user += ":" + name
    mac = hmac.new(secret.encode(), user.encode(), hashlib.sha1).digest()
    return user, base64.b64encode(mac).decode()


class Heard(asyncio.DatagramProtocol):
    """What comes to the relayed address: the first datagram."""

    def __init__(self):
        self.first = asyncio.get_running_loop().create_future()

    def datagram_received(self, data, addr):
        if not self.first.done():
            self.first.set_result((data, addr))


async def allocate(host, port, user, password, peer=None, echo=False):
    try:
        transport, heard = await asyncio.wait_for(
            turn.create_turn_endpoint(Heard, (host, port), user, password),
            timeout=10,
        )
    except Exception as e:  # aioice raises TransactionFailed (401 and the like) or a timeout
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    relay = transport.get_extra_info("sockname")
    answer = {"ok": True, "relay": f"{relay[0]}:{relay[1]}"}
    if peer:
        addr, _, p = peer.rpartition(":")
        # The client's own protocol (the transport keeps it to itself): its send_data raises
        # what the server answers to the channel binding.
        inner = transport._TurnTransport__inner_protocol
        try:
            await asyncio.wait_for(inner.send_data(b"spheres", (addr, int(p))), timeout=10)
            answer["peer"] = "sent"
            if echo:
                try:
                    await asyncio.wait_for(heard.first, timeout=5)
                    answer["echo"] = "heard"
                except asyncio.TimeoutError:
                    answer["echo"] = "nothing"
        except Exception as e:
            answer["peer"] = f"refused: {type(e).__name__}: {e}"
    transport.close()
    return answer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--secret")
    p.add_argument("--expires-in", type=int)
    p.add_argument("--name", default="")
    p.add_argument("--peer")
    p.add_argument("--echo", action="store_true")
    a = p.parse_args()
    if a.secret is not None and a.expires_in is not None:
        user, password = mint(a.secret, a.expires_in, a.name)
    elif a.user is not None and a.password is not None:
        user, password = a.user, a.password
    else:
        p.error("give --user and --password, or --secret and --expires-in")
    print(json.dumps(asyncio.run(allocate(a.host, a.port, user, password, a.peer, a.echo))), flush=True)


main()
