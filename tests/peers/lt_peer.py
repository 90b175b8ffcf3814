#!/usr/bin/python3
"""A libtorrent peer for spheres' interop tests and benchmarks.

Run with Debian's /usr/bin/python3 (python3-libtorrent imports only there).
Prints one JSON object per line on stdout: {"event": ...}.

  lt_peer.py create PATH OUT.torrent [--piece-size N] [--private] [--hybrid | --v2] [--tracker URL]...
  lt_peer.py seed   FILE.torrent DATA_DIR  [--listen PORT] [--peer HOST:PORT]... [--tracker URL] [--no-utp]
  lt_peer.py leech  FILE.torrent OUT_DIR   [--listen PORT] [--peer HOST:PORT]... [--timeout S] [--no-utp]
  (seed and leech also take --bind ADDR: the address to listen on, 127.0.0.1 by default, and
   --dht-bootstrap HOST:PORT...: join the DHT from these nodes, loopback ones allowed; --dht:
   run a DHT node with no bootstrap, for others to join: its UDP port is the listen port;
   --log-peers: print peers connecting and leaving, with libtorrent's reasons)

`--no-utp` keeps to TCP: libtorrent otherwise dials peers over uTP first, whose delay-based
congestion control makes loopback transfers slow and erratic (benchmarks use it).

`seed` runs until killed; `leech` exits 0 once the download is complete and checked.
"""
import argparse
import json
import os
import sys
import time

import libtorrent as lt


def emit(**kw):
    print(json.dumps(kw), flush=True)


def session(listen_port, utp=True, bind="127.0.0.1", dht=None, log_peers=False):
    settings = {
        "listen_interfaces": ("[%s]:%d" if ":" in bind else "%s:%d") % (bind, listen_port),
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        # Loopback peers would otherwise be rate limited as "local" only when configured.
        "alert_mask": lt.alert.category_t.error_notification
        | lt.alert.category_t.status_notification
        | lt.alert.category_t.tracker_notification,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        # libtorrent refuses trackers on localhost whose path is not exactly /announce (SSRF
        # mitigation); our private trackers put the key in the path, and tests run on loopback.
        # Trackers anywhere else are not affected.
        "ssrf_mitigation": False,
    }
    if log_peers:
        settings["alert_mask"] |= lt.alert.category_t.peer_notification | lt.alert.category_t.connect_notification
    if dht is not None:
        settings.update({
            "enable_dht": True,
            "dht_bootstrap_nodes": ",".join(dht),
            # Test networks live on loopback, which libtorrent's DHT ignores by default.
            "dht_restrict_routing_ips": False,
            "dht_restrict_search_ips": False,
            "dht_ignore_dark_internet": False,
        })
    if not utp:
        settings["enable_outgoing_utp"] = False
        settings["enable_incoming_utp"] = False
    ses = lt.session(settings)
    return ses


def add(ses, torrent, save_path, peers, seed_mode=False):
    info = lt.torrent_info(torrent)
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = save_path
    if seed_mode:
        params.flags |= lt.torrent_flags.seed_mode
    h = ses.add_torrent(params)
    for p in peers:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host.strip("[]"), int(port)))
    return h, info


def drain(ses):
    for a in ses.pop_alerts():
        if isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert)):
            emit(event="tracker", message=a.message())
        elif isinstance(a, (lt.peer_connect_alert, lt.peer_disconnected_alert, lt.incoming_connection_alert)):
            emit(event="peer", message=a.message())


def cmd_create(args):
    fs = lt.file_storage()
    lt.add_files(fs, args.path)
    # v1 by default; --hybrid: v1 and v2 (BEP 52) in one; --v2: v2 only.
    flags = 0 if args.hybrid else lt.create_torrent.v2_only if args.v2 else lt.create_torrent.v1_only
    t = lt.create_torrent(fs, args.piece_size or 0, flags=flags)
    for i, url in enumerate(args.tracker):
        t.add_tracker(url, i)
    if args.private:
        t.set_priv(True)
    lt.set_piece_hashes(t, os.path.dirname(os.path.abspath(args.path)))
    data = lt.bencode(t.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    info = lt.torrent_info(args.out)
    hashes = info.info_hashes()
    emit(event="created", info_hash=str(info.info_hash()), pieces=info.num_pieces(),
         info_hash_v2=str(hashes.v2) if hashes.has_v2() else None)


def cmd_seed(args):
    ses = session(args.listen, utp=not args.no_utp, bind=args.bind, dht=args.dht_bootstrap if (args.dht or args.dht_bootstrap) else None, log_peers=args.log_peers)
    h, info = add(ses, args.torrent, args.data, args.peer)
    deadline = time.time() + 120
    while not h.status().is_seeding:
        drain(ses)
        if time.time() > deadline:
            emit(event="error", message="data did not verify")
            return 1
        time.sleep(0.05)
    emit(event="seeding", info_hash=str(info.info_hash()), port=ses.listen_port())
    last = 0
    while True:
        drain(ses)
        st = h.status()
        if time.time() - last > 1:
            emit(event="progress", uploaded=st.total_upload, peers=st.num_peers)
            last = time.time()
        time.sleep(0.1)


def cmd_leech(args):
    ses = session(args.listen, utp=not args.no_utp, bind=args.bind, dht=args.dht_bootstrap if (args.dht or args.dht_bootstrap) else None, log_peers=args.log_peers)
    os.makedirs(args.out, exist_ok=True)
    h, info = add(ses, args.torrent, args.out, args.peer)
    emit(event="started", info_hash=str(info.info_hash()), port=ses.listen_port())
    start = time.time()
    last = 0
    while True:
        drain(ses)
        st = h.status()
        if st.is_seeding:
            emit(event="complete", seconds=time.time() - start, bytes=st.total_wanted)
            return 0
        if time.time() - start > args.timeout:
            emit(event="timeout", progress=st.progress)
            return 1
        if time.time() - last > 1:
            emit(event="progress", progress=st.progress, peers=st.num_peers)
            last = time.time()
        time.sleep(0.02)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("path")
    c.add_argument("out")
    c.add_argument("--piece-size", type=int, default=0)
    c.add_argument("--private", action="store_true")
    c.add_argument("--hybrid", action="store_true")
    c.add_argument("--v2", action="store_true")
    c.add_argument("--tracker", action="append", default=[])
    for name in ("seed", "leech"):
        s = sub.add_parser(name)
        s.add_argument("torrent")
        s.add_argument("data" if name == "seed" else "out")
        s.add_argument("--listen", type=int, default=0)
        s.add_argument("--peer", action="append", default=[])
        s.add_argument("--timeout", type=float, default=120)
        s.add_argument("--no-utp", action="store_true")
        s.add_argument("--bind", default="127.0.0.1", help="address to listen on (and connect from)")
        s.add_argument("--dht-bootstrap", action="append", default=[])
        s.add_argument("--dht", action="store_true")
        s.add_argument("--log-peers", action="store_true", help="print peers connecting and leaving")
    args = p.parse_args()
    return {"create": cmd_create, "seed": cmd_seed, "leech": cmd_leech}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
