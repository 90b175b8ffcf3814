#!/usr/bin/env bash
# Loopback transfer benchmark: one single-file torrent, seed -> leech, for four client pairs.
#
#   bench/transfer.sh [SIZE_MIB]        (default 1024, i.e. 1 GiB)
#
# Method
# - One file of SIZE_MIB random bytes is written once into a temporary folder under /tmp (the
#   page cache stays warm for every run) and removed at the end, with everything else.
# - One .torrent is made of it with spheres; it names an HTTP spheres tracker on 127.0.0.1. A
#   fresh tracker is started for each pair, so no pair sees peers left over from another.
# - Pairs, each with its own seed started once and kept up for the pair's runs:
#     spheres    `spheres torrent seed`  -> `spheres torrent get --peer SEED`   (our engine
#                behind the node's adapter, current-thread runtime)
#     engine     `bt seed` -> `bt get --peer SEED`: our own engine (crates/spheres-engine,
#                issue 13), through its example command (target/release/examples/bt)
#     libtorrent `lt_peer.py seed`       -> `lt_peer.py leech --peer SEED`   (python3-libtorrent;
#                both with --no-utp, so all three pairs talk TCP: by default libtorrent dials
#                over uTP, and on a busy 2-core VM its delay-based congestion control made a
#                64 MiB loopback transfer take 1.4 to 12 s, against a steady 1.1-1.3 s over
#                TCP. LT_UTP=1 keeps libtorrent's defaults)
#     aria2      `aria2c -V --seed-ratio=0.0` -> `aria2c --seed-time=0`    (peer via the tracker;
#                aria2c has no option to dial a peer directly)
#   A seed counts as ready when it says so (spheres, libtorrent: their "seeding" JSON line) or,
#   for aria2c, when the tracker's scrape shows one complete peer (aria2 announces once its -V
#   check is done). aria2 leeches with --file-allocation=none, so it does not first write
#   zeros over the whole file (its default, prealloc, does).
# - Each pair is run RUNS times (default 3) into a fresh, empty leech folder. The script reads
#   the leech's stdout as it comes and takes two wall-clock times from starting the process:
#   "to complete", when the leech says every piece is in and hash-checked, and "to exit",
#   when the process has exited with status 0. The completion signal is, for spheres, its
#   {"event":"complete"} line; for lt_peer.py, its {"event": "complete"} line (it polls every
#   20 ms); for aria2c, a line printed by its --on-bt-download-complete hook. "To exit" adds
#   whatever each client does after that (aria2c waits for its next one-second tick to send
#   its last announce, for example). Each download is then compared byte for byte with the
#   original (untimed) and deleted.
# - The table gives the median time to complete, SIZE_MIB / that in MiB/s, the speed relative
#   to the libtorrent pair (pair MiB/s / libtorrent MiB/s: above 1 is faster than libtorrent),
#   and the median time to exit.
#
# Environment: SPHERES (default target/release/spheres under the repository root), BT
# (default target/release/examples/bt: `cargo build --release -p spheres-engine --example bt`), RUNS (3),
# TIMEOUT (seconds allowed for any one wait or download, 600), PIECE_SIZE (e.g. 1M; default:
# whatever spheres picks), LT_UTP (set to 1 to let libtorrent use uTP), PAIRS_ONLY (e.g.
# "spheres libtorrent": run only those pairs). Progress goes to
# stderr, the markdown table to stdout.
# Only 127.0.0.1 is used. Needs: python3-libtorrent (/usr/bin/python3), aria2c.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPHERES=${SPHERES:-$ROOT/target/release/spheres}
case $SPHERES in /*) ;; *) SPHERES=$ROOT/$SPHERES ;; esac
BT=${BT:-$ROOT/target/release/examples/bt}
case $BT in /*) ;; *) BT=$ROOT/$BT ;; esac
LT_PEER=$ROOT/tests/peers/lt_peer.py
PY=/usr/bin/python3
SIZE_MIB=${1:-1024}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-600}
PIECE_SIZE=${PIECE_SIZE:-}
LT_FLAGS=(--no-utp)
[[ ${LT_UTP:-} == 1 ]] && LT_FLAGS=()

ARIA_COMMON=(
    --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
    --summary-interval=0 --console-log-level=warn --enable-color=false
)

log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -gt 0 ]] || die "SIZE_MIB must be a positive whole number"
[[ -x $SPHERES ]] || die "no spheres binary at $SPHERES (build it, or set SPHERES)"
[[ -x $BT ]] || die "no bt example at $BT (cargo build --release -p spheres-engine --example bt)"
[[ -x $PY ]] || die "$PY is missing"
$PY -c 'import libtorrent' 2>/dev/null || die "python3-libtorrent is not importable by $PY"
command -v aria2c >/dev/null || die "aria2c is missing"

# ---- processes and cleanup: bench/lib.sh -----------------------------------------------
# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

free_port() {
    $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# json_field FIELD: reads one JSON object on stdin, prints FIELD.
json_field() {
    $PY -c 'import json, sys; print(json.loads(sys.stdin.readline())[sys.argv[1]])' "$1"
}

# wait_event NAME PID EVENT: waits (bounded) until process PID prints the JSON line
# {"event": EVENT, ...} on stdout, and prints that line. Fails if PID exits first.
wait_event() {
    local name=$1 pid=$2 event=$3 line deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        line=$(grep -m1 -E "\"event\": ?\"$event\"" "$WORK/$name.out" || true)
        if [[ -n $line ]]; then
            printf '%s\n' "$line"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before '$event':"
            tail -n 20 "$WORK/$name.out" "$WORK/$name.err" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    log "$name: no '$event' within ${TIMEOUT}s"
    return 1
}

# ---- the tracker -----------------------------------------------------------------------

TRACKER_PORT=$(free_port)
TRACKER_PID=""

start_tracker() {
    bg tracker "$SPHERES" --json tracker --http "127.0.0.1:$TRACKER_PORT"
    TRACKER_PID=$BG_PID
    wait_event tracker "$TRACKER_PID" listening >/dev/null
}

stop_tracker() {
    if [[ -n $TRACKER_PID ]]; then stop "$TRACKER_PID"; fi
    TRACKER_PID=""
}

# Number of complete peers the tracker knows for INFO_HASH (hex), 0 if none.
tracker_seeders() {
    $PY - "$TRACKER_PORT" "$INFO_HASH" <<'EOF'
import re, sys, urllib.parse, urllib.request
port, ih = sys.argv[1], bytes.fromhex(sys.argv[2])
url = "http://127.0.0.1:%s/scrape?info_hash=%s" % (port, urllib.parse.quote(ih, safe=""))
try:
    body = urllib.request.urlopen(url, timeout=2).read()
except OSError:
    print(0)
    sys.exit()
m = re.search(rb"8:completei(\d+)e", body)
print(int(m.group(1)) if m else 0)
EOF
}

wait_tracker_seeder() {
    local name=$1 pid=$2 deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        (($(tracker_seeders) >= 1)) && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before it announced as a seed:"
            tail -n 20 "$WORK/$name.out" "$WORK/$name.err" >&2 || true
            return 1
        fi
        sleep 0.2
    done
    log "$name: not seeding within ${TIMEOUT}s"
    return 1
}

# ---- data and torrent ------------------------------------------------------------------

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/spheres-bench-transfer.XXXXXX")
mkdir "$WORK/data"
NAME=payload.bin
DATA=$WORK/data/$NAME
log "writing $SIZE_MIB MiB of random data to $DATA"
head -c "$((SIZE_MIB * 1048576))" /dev/urandom >"$DATA"
cat "$DATA" >/dev/null # warm the page cache

TORRENT=$WORK/payload.torrent
create_args=(--tracker "http://127.0.0.1:$TRACKER_PORT/announce")
[[ -n $PIECE_SIZE ]] && create_args+=(--piece-size "$PIECE_SIZE")
created=$("$SPHERES" --json torrent create "$DATA" -o "$TORRENT" "${create_args[@]}" | tail -n1)
INFO_HASH=$(json_field info_hash <<<"$created")
log "torrent: info hash $INFO_HASH, $(json_field pieces <<<"$created") pieces of $(json_field piece_length <<<"$created") bytes"

# ---- the pairs -------------------------------------------------------------------------

SEED_PID=""
SEED_ADDR=""

start_seed() {
    local pair=$1 line port
    case $pair in
    spheres)
        bg seed-spheres "$SPHERES" --json torrent seed "$TORRENT" --data "$DATA" --listen 127.0.0.1:0
        SEED_PID=$BG_PID
        line=$(wait_event seed-spheres "$SEED_PID" seeding)
        SEED_ADDR=$(json_field listen <<<"$line")
        ;;
    engine)
        bg seed-engine "$BT" seed "$TORRENT" "$DATA" --listen 127.0.0.1:0
        SEED_PID=$BG_PID
        line=$(wait_event seed-engine "$SEED_PID" seeding)
        SEED_ADDR=$(json_field listen <<<"$line")
        ;;
    libtorrent)
        bg seed-libtorrent "$PY" "$LT_PEER" seed "$TORRENT" "$WORK/data" "${LT_FLAGS[@]}"
        SEED_PID=$BG_PID
        line=$(wait_event seed-libtorrent "$SEED_PID" seeding)
        SEED_ADDR=127.0.0.1:$(json_field port <<<"$line")
        ;;
    aria2)
        port=$(free_port)
        bg seed-aria2 aria2c "${ARIA_COMMON[@]}" -V --seed-ratio=0.0 \
            --listen-port="$port" --dir="$WORK/data" "$TORRENT"
        SEED_PID=$BG_PID
        wait_tracker_seeder seed-aria2 "$SEED_PID"
        SEED_ADDR=127.0.0.1:$port
        ;;
    esac
}

# leech_cmd PAIR DIR: sets LEECH to the leech's command line.
leech_cmd() {
    local pair=$1 dir=$2
    case $pair in
    spheres) LEECH=("$SPHERES" --json torrent get "$TORRENT" --out "$dir" --peer "$SEED_ADDR") ;;
    engine) LEECH=("$BT" get "$TORRENT" --out "$dir" --peer "$SEED_ADDR") ;;
    libtorrent) LEECH=("$PY" "$LT_PEER" leech "$TORRENT" "$dir" --peer "$SEED_ADDR" --timeout "$TIMEOUT" "${LT_FLAGS[@]}") ;;
    aria2)
        LEECH=(aria2c "${ARIA_COMMON[@]}" --seed-time=0 --file-allocation=none
            --on-bt-download-complete="$ARIA_HOOK" --listen-port="$(free_port)" --dir="$dir" "$TORRENT")
        ;;
    esac
}

# aria2c runs this once every piece is in and checked; its stdout is aria2c's, so the line
# reaches the script like the other leeches' "complete" lines.
ARIA_HOOK=$WORK/aria2-complete.sh
cat >"$ARIA_HOOK" <<'EOF'
#!/bin/sh
echo "{\"event\":\"complete\",\"gid\":\"$1\"}"
EOF
chmod +x "$ARIA_HOOK"

# run_leech NAME: runs $LEECH (bounded by TIMEOUT), reading its stdout through a FIFO as it
# comes; sets T_DONE (when its "complete" line arrived) and T_EXIT (when it exited), both in
# seconds since it was started. Fails unless it printed "complete" and exited with status 0.
run_leech() {
    local name=$1 fifo=$WORK/$1.fifo line t0 t_done="" t_exit rc=0 pid
    mkfifo "$fifo"
    t0=$EPOCHREALTIME
    timeout -k 5 "$TIMEOUT" "${LEECH[@]}" >"$fifo" 2>"$WORK/$name.err" &
    pid=$!
    PIDS+=("$pid")
    while IFS= read -r line; do
        if [[ -z $t_done && $line =~ \"event\":\ ?\"complete\" ]]; then t_done=$EPOCHREALTIME; fi
        printf '%s\n' "$line" >>"$WORK/$name.out"
    done <"$fifo"
    wait "$pid" || rc=$?
    t_exit=$EPOCHREALTIME
    stop "$pid" # already gone; just forgets the pid
    if ((rc != 0)) || [[ -z $t_done ]]; then
        if [[ -n $t_done ]]; then
            log "$name: exited with status $rc"
        else
            log "$name: exited with status $rc, without a \"complete\" line"
        fi
        tail -n 20 "$WORK/$name.out" "$WORK/$name.err" >&2 || true
        return 1
    fi
    read -r T_DONE T_EXIT < <($PY -c 'import sys; t0, d, e = map(float, sys.argv[1:]); print("%.3f %.3f" % (d - t0, e - t0))' "$t0" "$t_done" "$t_exit")
}

declare -A COMPLETED EXITED
PAIRS=(${PAIRS_ONLY:-spheres engine libtorrent aria2})

for pair in "${PAIRS[@]}"; do
    start_tracker
    start_seed "$pair"
    log "$pair: seed ready at $SEED_ADDR"
    COMPLETED[$pair]=""
    EXITED[$pair]=""
    for ((run = 1; run <= RUNS; run++)); do
        dir=$WORK/leech-$pair-$run
        mkdir "$dir"
        leech_cmd "$pair" "$dir"
        run_leech "leech-$pair-$run"
        cmp -s "$DATA" "$dir/$NAME" || die "$pair run $run: the download differs from the original"
        log "$pair run $run: complete after ${T_DONE}s, exited after ${T_EXIT}s"
        COMPLETED[$pair]+="$T_DONE "
        EXITED[$pair]+="$T_EXIT "
        rm -rf "$dir"
        sync
    done
    stop "$SEED_PID"
    SEED_PID=""
    stop_tracker
done

# ---- the table -------------------------------------------------------------------------

for pair in "${PAIRS[@]}"; do
    echo "$pair ${COMPLETED[$pair]}"
    echo "$pair ${EXITED[$pair]}"
done >"$WORK/times"
$PY - "$SIZE_MIB" "$WORK/times" <<'EOF'
import statistics, sys
size = float(sys.argv[1])
lines = open(sys.argv[2]).read().splitlines()
rows = []
for done, exited in zip(lines[0::2], lines[1::2]):
    pair, *d = done.split()
    e = exited.split()[1:]
    rows.append((pair, statistics.median(map(float, d)), statistics.median(map(float, e)), d))
base = {p: m for p, m, _, _ in rows}["libtorrent"]
print("Loopback transfer of %g MiB, one seed and one leech, median of %d runs" % (size, len(rows[0][3])))
print()
print("| pair | median s to complete | MiB/s | speed vs libtorrent | median s to exit | runs to complete (s) |")
print("|---|---:|---:|---:|---:|---|")
for pair, med, med_exit, runs in rows:
    print("| %s | %.2f | %.1f | %.2f | %.2f | %s |"
          % (pair, med, size / med, base / med, med_exit, ", ".join(runs)))
EOF
