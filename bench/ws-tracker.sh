#!/usr/bin/env bash
# WebSocket tracker load: WebTorrent browsers' offers relayed per second and per CPU-second,
# spheres' tracker (`spheres tracker --ws`, the signalling links use) against the
# `bittorrent-tracker` npm server (WebTorrent's own), in the same run.
#
#   bench/ws-tracker.sh [CONNECTIONS] [SWARMS] [SECONDS] [PERIOD_MS]   (defaults 2000 100 10 6000)
#
# Method
# - The load is bench/ws-tracker.mjs (Node.js, the `ws` package): CONNECTIONS WebSockets, 40
#   from each loopback address 127.0.1.x (browsers come from many addresses; ours serves at
#   most 64 connections per address), over SWARMS torrents, each announcing every PERIOD_MS with 5 offers (SDPs of about 500 bytes) and
#   answering every offer it is handed, as WebTorrent browsers do. The default load offers
#   2000 x 5 / 6 s = 1667 offers per second (and as many answers); one announce and its 5
#   answers every 6 s keep each connection under our tracker's per-connection limit (30 at
#   once, then one a second), as real browsers (one announce every 2 minutes) are.
# - Counted over SECONDS, once every connection is open and has announced: offers delivered to
#   browsers, answers delivered back, announces answered; and the CPU time the tracker process
#   used in that window (/proc/PID/stat). Offers per CPU-second is the figure to compare: the
#   generator shares the 2 cores with the tracker, so how many offers get through says more
#   about the generator than the tracker once either saturates.
# - Each tracker is started fresh on a port of 127.0.0.1 the OS chose, RUNS times (default 3);
#   the table gives medians, and spheres / bittorrent-tracker (above 1: ours relays more per
#   CPU-second).
# - bittorrent-tracker (BT_TRACKER_VERSION, default 11.2.3) is installed with npm into
#   target/bench-node (scripts skipped: its WebRTC client needs a native module the server does
#   not), and run as `new Server({ws: true, http: false, udp: false, stats: false})`.
#
# Environment: SPHERES (default target/release/spheres), RUNS (3). Progress on stderr, the
# markdown table on stdout. Only 127.0.0.1 is used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPHERES=${SPHERES:-$ROOT/target/release/spheres}
CONNECTIONS=${1:-2000}
SWARMS=${2:-100}
DURATION=${3:-10}
PERIOD=${4:-6000}
RUNS=${RUNS:-3}
BT_TRACKER_VERSION=${BT_TRACKER_VERSION:-11.2.3}

log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
[[ -x $SPHERES ]] || die "no spheres binary at $SPHERES (cargo build --release -p spheres, or set SPHERES)"
command -v node >/dev/null || die "node is missing"
command -v npm >/dev/null || die "npm is missing"
# Both the trackers and the generator hold a descriptor per connection.
ulimit -n $((CONNECTIONS * 2 + 1024)) 2>/dev/null || die "cannot raise the open files limit for $CONNECTIONS connections"

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WORK=$(mktemp -d /tmp/spheres-bench-ws.XXXXXX)

MODULES=$ROOT/target/bench-node
if [[ ! -f $MODULES/node_modules/bittorrent-tracker/server.js ]] ||
    ! grep -q "\"version\": \"$BT_TRACKER_VERSION\"" "$MODULES/node_modules/bittorrent-tracker/package.json"; then
    log "installing bittorrent-tracker@$BT_TRACKER_VERSION into $MODULES"
    mkdir -p "$MODULES"
    (cd "$MODULES" && npm install --silent --no-audit --no-fund --ignore-scripts --no-save \
        "bittorrent-tracker@$BT_TRACKER_VERSION" >/dev/null)
fi
cat >"$MODULES/bt-tracker.mjs" <<'JS'
import Server from "bittorrent-tracker/server";
const server = new Server({ udp: false, http: false, ws: true, stats: false });
server.on("error", (e) => console.error(e.message));
server.on("warning", () => {});
server.listen(0, "127.0.0.1", () => console.log(JSON.stringify({ event: "listening", ws: `ws://127.0.0.1:${server.ws.address().port}` })));
JS

# start NAME CMD...: starts a tracker; sets TRACKER_PID and URL once it says where it listens.
start() {
    local name=$1 line i
    shift
    bg "$name" "$@"
    TRACKER_PID=$BG_PID
    for ((i = 0; i < 300; i++)); do
        if line=$(grep -m1 '"event":"listening"' "$WORK/$name.out"); then
            URL=$(json_field "$line" '["ws"]')
            return 0
        fi
        kill -0 "$TRACKER_PID" 2>/dev/null || { cat "$WORK/$name.err" >&2; die "$name exited"; }
        sleep 0.1
    done
    die "$name is not listening after 30 s"
}

# measure NAME CMD...: one run; prints the generator's JSON line.
measure() {
    local name=$1
    shift
    start "$name" "$@"
    TRACKER_PID=$TRACKER_PID WS_FROM="$MODULES/node_modules/" \
        command node "$ROOT/bench/ws-tracker.mjs" "$URL" "$CONNECTIONS" "$SWARMS" "$DURATION" "$PERIOD"
    stop "$TRACKER_PID"
}

declare -A RESULTS
for ((run = 1; run <= RUNS; run++)); do
    for who in spheres bittorrent-tracker; do
        log "run $run: $who, $CONNECTIONS connections, $SWARMS swarms, an announce every ${PERIOD} ms each"
        if [[ $who == spheres ]]; then
            out=$(measure spheres "$SPHERES" --json tracker --ws 127.0.0.1:0)
        else
            out=$(measure bt "$(type -P node)" "$MODULES/bt-tracker.mjs")
        fi
        log "  $out"
        RESULTS[$who]+="$out"$'\n'
    done
done

python3 - "$CONNECTIONS" "$SWARMS" "$PERIOD" <<EOF
import json, statistics, sys
c, s, p = sys.argv[1:]
runs = {"spheres": """${RESULTS[spheres]}""", "bittorrent-tracker": """${RESULTS[bittorrent-tracker]}"""}
med = {}
for who, text in runs.items():
    rows = [json.loads(l) for l in text.splitlines() if l.strip()]
    med[who] = {k: statistics.median(r[k] or 0 for r in rows) for k in
                ("offers_per_s", "answers_per_s", "announces_per_s", "tracker_cpu_s", "offers_per_cpu_s", "sent_offers_per_s", "errors", "seconds")}
print(f"{c} connections, {s} swarms, an announce with 5 offers every {p} ms each; medians of {len(rows)} runs\n")
print("| tracker | offers sent/s | offers delivered/s | answers delivered/s | tracker CPU | offers per CPU-second | errors |")
print("|---|---|---|---|---|---|---|")
for who, m in med.items():
    print(f"| {who} | {m['sent_offers_per_s']:.0f} | {m['offers_per_s']:.0f} | {m['answers_per_s']:.0f} | {100 * m['tracker_cpu_s'] / m['seconds']:.0f} % | {m['offers_per_cpu_s']:.0f} | {m['errors']:.0f} |")
a, b = med["spheres"]["offers_per_cpu_s"], med["bittorrent-tracker"]["offers_per_cpu_s"]
print(f"\nspheres / bittorrent-tracker, offers per CPU-second: {a / b:.2f}" if b else "")
EOF
