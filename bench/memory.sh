#!/usr/bin/env bash
# Memory of our engine (issue 13, benchmark (c)): resident size of one process seeding many
# torrents, and of one downloading a large torrent, against the same with few or small ones.
#
#   bench/memory.sh [TORRENTS] [LARGE_GIB]      (defaults: 100 torrents, 10 GiB)
#
# Method
# - Seeding: TORRENTS files of 4 MiB random bytes, one torrent each (1 MiB pieces, made by
#   `spheres torrent create`), all seeded by one `bt seed-all` process; its VmRSS is read from
#   /proc once it says it is seeding every one. The same with 1 torrent gives the base; the
#   report is (RSS(N) - RSS(1)) / (N - 1) per torrent.
# - Downloading: one file of LARGE_GIB GiB and one of 1 GiB (both sparse: zeros read from
#   holes, so only the leech writes for real), 1 MiB pieces (10 240 pieces for 10 GiB).
#   `bt seed` seeds it, `bt get --peer SEED` downloads it into the work folder; the leech's
#   peak resident size (VmHWM) is read just before it exits (the script polls /proc while it
#   runs). Reported: both peaks and their ratio: flat in the number of pieces is a ratio
#   near 1 (the picker's per-piece state is a few bytes a piece; blocks in flight are
#   bounded in bytes, not in pieces).
# - The leech's download lands in BENCH_DIR (default /tmp): it needs LARGE_GIB + 1 GiB free.
#
# Needs: cargo build --release -p spheres && cargo build --release -p spheres-engine --example bt
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

TORRENTS=${1:-100}
LARGE_GIB=${2:-10}
ROOT=$PWD
SPHERES=$ROOT/target/release/spheres
BT=$ROOT/target/release/examples/bt
[[ -x $SPHERES && -x $BT ]] || {
    echo "build first: cargo build --release -p spheres && cargo build --release -p spheres-engine --example bt" >&2
    exit 1
}
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/spheres-bench-memory.XXXXXX")

kib() { awk -v k="$2" '$1 == k":" { print $2 }' "/proc/$1/status"; }

# wait_line FILE PATTERN: until FILE has a line matching PATTERN (10 min at most).
wait_line() {
    local i
    for ((i = 0; i < 6000; i++)); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    echo "timed out waiting for $2 in $1" >&2
    return 1
}

# seeding N: sets RESULT to the RSS in KiB of one process seeding N torrents of 4 MiB.
# (Results go through RESULT, not $(...): a subshell would hide its processes from cleanup.)
seeding() {
    local n=$1 dir=$WORK/seed-$1 i
    mkdir -p "$dir"
    for ((i = 0; i < n; i++)); do
        head -c $((4 << 20)) /dev/urandom >"$dir/file-$i.bin"
        "$SPHERES" torrent create "$dir/file-$i.bin" --output "$dir/file-$i.torrent" \
            --piece-size 1048576 >/dev/null
    done
    bg "seed-all-$n" "$BT" seed-all "$dir"
    wait_line "$WORK/seed-all-$n.out" '"event":"seeding"'
    RESULT=$(kib "$BG_PID" VmRSS)
    stop "$BG_PID"
}

# leech GIB: sets RESULT to the peak RSS in KiB of `bt get` downloading GIB GiB of 1 MiB
# pieces.
leech() {
    local gib=$1 dir=$WORK/large-$1 peak=0 now pid
    mkdir -p "$dir/seed" "$dir/out"
    truncate -s "${gib}G" "$dir/seed/large.bin"
    "$SPHERES" torrent create "$dir/seed/large.bin" --output "$dir/large.torrent" \
        --piece-size 1048576 >/dev/null
    bg "seed-$gib" "$BT" seed "$dir/large.torrent" "$dir/seed/large.bin"
    local seed_pid=$BG_PID
    wait_line "$WORK/seed-$gib.out" '"event":"seeding"'
    local addr
    addr=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["listen"])' \
        "$(grep '"event":"seeding"' "$WORK/seed-$gib.out")")
    bg "get-$gib" "$BT" get "$dir/large.torrent" --out "$dir/out" --peer "$addr"
    pid=$BG_PID
    while kill -0 "$pid" 2>/dev/null; do
        now=$(kib "$pid" VmHWM 2>/dev/null || echo 0)
        [[ -n $now && $now -gt $peak ]] && peak=$now
        sleep 0.2
    done
    wait "$pid" || true
    grep -q '"event":"complete"' "$WORK/get-$gib.out" || { echo "the $gib GiB download failed" >&2; exit 1; }
    stop "$seed_pid"
    rm -rf "$dir"
    RESULT=$peak
}

seeding 1
one=$RESULT
seeding "$TORRENTS"
many=$RESULT
leech 1
small=$RESULT
leech "$LARGE_GIB"
large=$RESULT
python3 - "$TORRENTS" "$one" "$many" "$LARGE_GIB" "$small" "$large" <<'EOF'
import sys
n, one, many, gib, small, large = sys.argv[1], *map(int, sys.argv[2:4]), sys.argv[4], *map(int, sys.argv[5:7])
n = int(n)
print("| measure | resident KiB |")
print("|---|---:|")
print(f"| seeding 1 torrent | {one} |")
print(f"| seeding {n} torrents | {many} |")
print(f"| per extra torrent | {(many - one) / (n - 1):.0f} |")
print(f"| peak, downloading 1 GiB (1 024 pieces) | {small} |")
print(f"| peak, downloading {gib} GiB ({int(gib) * 1024} pieces) | {large} |")
print(f"| ratio {gib} GiB / 1 GiB | {large / small:.2f} |")
EOF
