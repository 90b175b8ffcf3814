#!/usr/bin/env bash
# Tracker load benchmark: announces per second, spheres' tracker against opentracker, UDP and HTTP.
#
#   bench/tracker.sh [DURATION_S] [CONCURRENCY]      (defaults 10 and 4)
#
# Method
# - The load generator is crates/spheres-tracker/examples/tracker_load.rs, built with
#   `cargo build --release -p spheres-tracker --example tracker_load` (override the path with
#   TRACKER_LOAD). For DURATION_S seconds it announces as fast as the tracker answers, from
#   CONCURRENCY threads: over UDP each thread has its own socket with up to 32 announces in
#   flight (BEP 15), over HTTP each has one keep-alive connection with one request in flight.
#   It counts the valid answers received within the window. Every announce names one of a
#   fixed set of 1000 info hashes (hash i, for i in 1..=1000, is the big-endian u32 i repeated
#   five times: `tracker_load hashes` prints them) with a random peer id and port, left=1,
#   numwant=50. See the source for the details.
# - Every measurement gets a freshly started tracker (empty swarms), on 127.0.0.1 ports the
#   OS picked:
#     spheres      `spheres tracker --http 127.0.0.1:0 --udp 127.0.0.1:0` (ready once it prints
#                  its "listening" line)
#     opentracker  Debian's build serves only whitelisted info hashes, so it gets the
#                  generator's 1000 as its whitelist. Run as root it chroots into its -d folder
#                  and drops to -u's user before reading the whitelist, so the whitelist sits in
#                  that folder, named by a relative path, and the folder and file must be
#                  readable by that user. The invocation (also fine for a non-root user, who
#                  just chdirs into the folder):
#                    opentracker -f DIR/ot.conf -d DIR -u nobody -w whitelist
#                  with DIR/ot.conf holding
#                    listen.udp.workers N      (OT_UDP_WORKERS, default: the number of cores;
#                                               0 leaves UDP on opentracker's main thread)
#                    listen.tcp 127.0.0.1:PORT
#                    listen.udp 127.0.0.1:PORT
#                  It is ready once an HTTP announce and a UDP connect for a listed hash get
#                  answered (which also proves the whitelist was loaded).
#   opentracker closes the HTTP connection after every answer (without a Connection: close
#   header), so its HTTP figure includes one TCP connect per announce: the generator notices
#   on the first reuse, resends without counting a loss, and from then on opens a new
#   connection per request. That is how opentracker serves keep-alive clients, so it is part
#   of what is measured.
# - Each combination is measured RUNS times (default 3); the table gives the medians and
#   spheres / opentracker (above 1: spheres answers more announces per second).
# - The generator runs on the same machine and competes with the tracker for the CPUs, so the
#   figures are a floor for both trackers rather than their capacity; both face the same load.
#
# Environment: SPHERES (default target/release/spheres under the repository root),
# TRACKER_LOAD (default target/release/examples/tracker_load), RUNS (3), OT_UDP_WORKERS,
# TIMEOUT (seconds to wait for a tracker to come up, 30). Progress goes to stderr, the
# markdown table to stdout. Only 127.0.0.1 is used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPHERES=${SPHERES:-$ROOT/target/release/spheres}
case $SPHERES in /*) ;; *) SPHERES=$ROOT/$SPHERES ;; esac
LOAD=${TRACKER_LOAD:-$ROOT/target/release/examples/tracker_load}
case $LOAD in /*) ;; *) LOAD=$ROOT/$LOAD ;; esac
DURATION=${1:-10}
CONCURRENCY=${2:-4}
RUNS=${RUNS:-3}
OT_UDP_WORKERS=${OT_UDP_WORKERS:-$(nproc)}
TIMEOUT=${TIMEOUT:-30}
OT_USER=nobody

log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ -x $SPHERES ]] || die "no spheres binary at $SPHERES (build it, or set SPHERES)"
[[ -x $LOAD ]] || die "no load generator at $LOAD: cargo build --release -p spheres-tracker --example tracker_load"
command -v opentracker >/dev/null || die "opentracker is missing"
command -v python3 >/dev/null || die "python3 is missing"
[[ $OT_UDP_WORKERS =~ ^[0-9]+$ ]] || die "OT_UDP_WORKERS must be a whole number"

# ---- processes and cleanup: bench/lib.sh -----------------------------------------------
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# A port free for both TCP and UDP on 127.0.0.1, chosen by the OS.
free_port() {
    python3 - <<'EOF'
import socket
for _ in range(100):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(port)
    break
else:
    raise SystemExit("no port free for both TCP and UDP")
EOF
}

WORK=$(mktemp -d /tmp/spheres-bench-tracker.XXXXXX)

# ---- spheres ---------------------------------------------------------------------------

# Sets TRACKER_PID, HTTP_ADDR, UDP_ADDR.
start_spheres() {
    local line deadline=$((SECONDS + TIMEOUT))
    bg spheres "$SPHERES" --json tracker --http 127.0.0.1:0 --udp 127.0.0.1:0
    TRACKER_PID=$BG_PID
    while ! line=$(grep -m1 '"event":"listening"' "$WORK/spheres.out"); do
        kill -0 "$TRACKER_PID" 2>/dev/null || {
            cat "$WORK/spheres.err" >&2
            die "spheres tracker exited"
        }
        ((SECONDS < deadline)) || die "spheres tracker not listening within ${TIMEOUT}s"
        sleep 0.1
    done
    read -r HTTP_ADDR UDP_ADDR < <(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(d["http"], d["udp"])' "$line")
}

# ---- opentracker -----------------------------------------------------------------------

OT_DIR=$WORK/opentracker
mkdir "$OT_DIR"
"$LOAD" hashes >"$OT_DIR/whitelist"
(($(wc -l <"$OT_DIR/whitelist") == 1000)) || die "tracker_load hashes did not print 1000 hashes"
FIRST_HASH=$(head -n1 "$OT_DIR/whitelist")
# opentracker reads its whitelist after dropping to $OT_USER.
chmod 755 "$OT_DIR"
chmod 644 "$OT_DIR/whitelist"

# Exits 0 once the tracker on 127.0.0.1:PORT answers an HTTP announce and a UDP connect for a
# whitelisted hash.
ot_probe() {
    python3 - "$1" "$FIRST_HASH" <<'EOF'
import socket, struct, sys, urllib.parse, urllib.request
port, ih = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
q = urllib.parse.urlencode({"info_hash": ih, "peer_id": b"-PROBE0-000000000000", "port": 6881,
                            "left": 1, "compact": 1})
try:
    body = urllib.request.urlopen("http://127.0.0.1:%d/announce?%s" % (port, q), timeout=1).read()
    if not body.startswith(b"d") or b"failure reason" in body:
        sys.exit("HTTP: %r" % body[:200])
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(1)
    u.sendto(struct.pack(">QII", 0x41727101980, 0, 12345), ("127.0.0.1", port))
    action, tid, _ = struct.unpack(">IIQ", u.recv(64)[:16])
    if (action, tid) != (0, 12345):
        sys.exit("UDP: unexpected answer")
except OSError as e:
    sys.exit(str(e))
EOF
}

start_opentracker() {
    local port deadline=$((SECONDS + TIMEOUT)) why
    port=$(free_port)
    {
        if ((OT_UDP_WORKERS > 0)); then echo "listen.udp.workers $OT_UDP_WORKERS"; fi
        echo "listen.tcp 127.0.0.1:$port"
        echo "listen.udp 127.0.0.1:$port"
    } >"$OT_DIR/ot.conf"
    chmod 644 "$OT_DIR/ot.conf"
    bg opentracker opentracker -f "$OT_DIR/ot.conf" -d "$OT_DIR" -u "$OT_USER" -w whitelist
    TRACKER_PID=$BG_PID
    while ! why=$(ot_probe "$port" 2>&1); do
        kill -0 "$TRACKER_PID" 2>/dev/null || {
            cat "$WORK/opentracker.err" >&2
            die "opentracker exited"
        }
        ((SECONDS < deadline)) || die "opentracker not answering within ${TIMEOUT}s: $why"
        sleep 0.1
    done
    HTTP_ADDR=127.0.0.1:$port
    UDP_ADDR=127.0.0.1:$port
}

# ---- measurements ----------------------------------------------------------------------

declare -A RATES
for tracker in spheres opentracker; do
    for mode in udp http; do
        RATES[$tracker-$mode]=""
        for ((run = 1; run <= RUNS; run++)); do
            "start_$tracker"
            if [[ $mode == udp ]]; then addr=$UDP_ADDR; else addr=$HTTP_ADDR; fi
            name=load-$tracker-$mode-$run
            bg "$name" "$LOAD" "$mode" "$addr" "$DURATION" "$CONCURRENCY"
            rc=0
            wait "$BG_PID" || rc=$?
            stop "$BG_PID" # already gone; just forgets the pid
            stop "$TRACKER_PID"
            ((rc == 0)) || die "tracker_load failed ($rc): $(cat "$WORK/$name.err")"
            result=$(tail -n1 "$WORK/$name.out")
            log "$tracker $mode run $run: $result"
            read -r rate announces failures lost < <(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
print(d["per_second"], d["announces"], d.get("failures", 0), d.get("lost", 0))' "$result")
            ((announces > 0)) || die "$tracker $mode: no valid announce answered"
            if ((failures > 0 || lost > 0)); then
                log "  warning: $failures refused or invalid answers, $lost lost requests"
            fi
            RATES[$tracker-$mode]+="$rate "
        done
    done
done

python3 - "$DURATION" "$CONCURRENCY" "$OT_UDP_WORKERS" "$(nproc)" \
    "${RATES[spheres-udp]}" "${RATES[spheres-http]}" \
    "${RATES[opentracker-udp]}" "${RATES[opentracker-http]}" <<'EOF'
import statistics, sys
duration, concurrency, workers, cores = sys.argv[1:5]
s_udp, s_http, o_udp, o_http = ([float(x) for x in a.split()] for a in sys.argv[5:9])
print("Tracker announces per second: %s s per run, %s generator threads, median of %d runs, "
      "%s cores shared by tracker and generator; opentracker UDP workers: %s"
      % (duration, concurrency, len(s_udp), cores, workers if workers != "0" else "main thread"))
print()
print("| protocol | spheres /s | opentracker /s | spheres / opentracker |")
print("|---|---:|---:|---:|")
for name, s, o in (("UDP", s_udp, o_udp), ("HTTP", s_http, o_http)):
    ms, mo = statistics.median(s), statistics.median(o)
    print("| %s | %.0f | %.0f | %.2f |" % (name, ms, mo, ms / mo))
EOF
