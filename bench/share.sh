#!/usr/bin/env bash
# Benchmark: how long a share takes to reach every member, against the ideal.
#
#   bench/share.sh [SIZE_MIB] [MEMBERS]      (defaults: 1024 MiB, 8 members)
#
# One household node (alice) and MEMBERS member nodes, all real `spheres up` processes of
# the release build on loopback. Alice shares a file of SIZE_MIB; the clock runs from the
# end of `spheres share` (the announcement is out) until every member's copy is complete and
# verified. The same is done with ONE member first: that time, T1, is what one upload of the
# file costs here (the sharer's upload capacity to one node). A perfect swarm, where members
# pass pieces on as fast as they get them, delivers to any number of members in about T1;
# a star (the sharer uploads to each in turn) takes MEMBERS x T1. Reported: T_N / T1.
#
# Needs: cargo build --release -p spheres; prosody. BENCH_DIR picks the working folder
# (e.g. BENCH_DIR=/dev/shm: disks out of the picture). UPLOAD_LIMIT (e.g. 10M, bytes per
# second) caps every node's upload: on one machine the nodes otherwise share its cores, and
# the cores, not the sharer's upload, bound the time; with a cap below what the machine can
# carry, upload capacity is the limit again, as between homes, and T_N / T1 measures how
# well members pass pieces on.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SIZE_MIB=${1:-1024}
MEMBERS=${2:-8}
BIN=$PWD/target/release/spheres
[[ -x $BIN ]] || { echo "build first: cargo build --release -p spheres" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/spheres-bench-share.XXXXXX")

# Every node's upload capped (UPLOAD_LIMIT): bench/lib.sh's `node` passes NODE_ARGS.
NODE_ARGS=(${UPLOAD_LIMIT:+--upload-limit "$UPLOAD_LIMIT"})

# run N: a fresh household with N members; prints the seconds from share to all complete.
run() {
    local n=$1 i
    rm -rf "${WORK:?}/alice" "$WORK"/m*
    household Bench "$n"
    cli alice share Bench "$WORK/data.bin" >/dev/null
    local start done_all=0
    start=$(now)
    while ((done_all < n)); do
        done_all=0
        for ((i = 1; i <= n; i++)); do
            cli "m$i" shares Bench | grep -q '"state":"seeding"' && done_all=$((done_all + 1))
        done
        sleep 0.2
    done
    local end
    end=$(now)
    for ((i = 1; i <= n; i++)); do
        cmp -s "$WORK/data.bin" "$WORK/m$i/Spheres/Bench/data.bin" || { echo "m$i: copy differs" >&2; exit 1; }
    done
    for p in "${PIDS[@]}"; do stop "$p"; done
    python3 -c "print(round($end - $start, 2))"
}

head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$WORK/data.bin"
t1=$(run 1)
tn=$(run "$MEMBERS")
echo "share of $SIZE_MIB MiB to 1 member: ${t1} s; to $MEMBERS members: ${tn} s"
python3 -c "print('T_$MEMBERS / T_1 = %.2f (perfect swarm ~1, star = $MEMBERS)' % ($tn / $t1))"
