#!/usr/bin/env bash
# Streaming in the browser (issue 13, benchmark (d)): on the sphere page, in Chromium, how
# long from the click on a video that the member's node has not fetched to its first frame
# playing, and from a seek to 80 % to playing there.
#
#   bench/stream.sh [SIZE_MIB] [RUNS]      (defaults: 1024 MiB, 3 runs)
#
# Method
# - Two real `spheres up` processes of the release build on loopback: alice (the household
#   server, the sharer, her upload capped at UPLOAD_LIMIT, default 5M = 5 MB/s, as a home
#   connection) and m1 (a member whose sphere policy is "none": nothing is fetched until
#   someone opens it).
# - The video: WebM (VP8, 1280x720, noisy so it does not compress) made by ffmpeg, a 20 s
#   segment repeated (stream copy) up to SIZE_MIB; its index (Cues) at the end, as ffmpeg
#   writes it, so a seek needs the file's last bytes too. Each run shares its own copy (a
#   different title, so a different torrent) and the member's node has none of it.
# - bench/stream.mjs drives Debian's Chromium (playwright-core): m1's page, the card's
#   click, then in the page: until the player plays (currentTime > 0, not paused), and after
#   setting currentTime to 80 % of the duration, until it plays past that point (readyState
#   >= 3, not seeking). Clocks are the page's own (performance.now), polled every frame.
#   BENCH_DEBUG=1 prints the page's range requests and their times, and keeps the member
#   node's log in /tmp/stream-m1-RUN.log (with RUST_LOG=spheres_engine=debug: each wait of a
#   reader for a piece).
# - Each run has a household of its own (nothing of an earlier run downloading meanwhile).
# - Reported: each run, and the median of each time. Targets (issue 13): under 1 s each.
#
# Needs: cargo build --release -p spheres; prosody, ffmpeg, chromium and tests/browser's
# npm packages (scripts/install-test-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SIZE_MIB=${1:-1024}
RUNS=${2:-3}
BIN=$PWD/target/release/spheres
[[ -x $BIN ]] || { echo "build first: cargo build --release -p spheres" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/spheres-bench-stream.XXXXXX")

results=()
for ((r = 1; r <= RUNS; r++)); do
    # A fresh household each run: nothing of an earlier run's video still downloading.
    rm -rf "${WORK:?}/alice" "$WORK/m1"
    household Bench 1 --upload-limit "${UPLOAD_LIMIT:-5M}"
    cli m1 sphere policy Bench none >/dev/null
    web=$(json_field "$(cli m1 status)" "['http']")
    name="film-$r.webm"
    video "$SIZE_MIB" "$WORK/$name" -metadata "title=run $r"
    cli alice share Bench "$WORK/$name" >/dev/null
    until cli m1 shares Bench | grep -q "\"$name\""; do sleep 0.2; done
    line=$(NODE="$web" DATA="$WORK/m1/data" SPHERE=Bench NAME="$name" command node bench/stream.mjs)
    echo "run $r: $line"
    results+=("$line")
    rm -f "$WORK/$name"
    [[ -z ${BENCH_DEBUG:-} ]] || cp "$WORK/m1.err" "/tmp/stream-m1-$r.log"; cp "$WORK/alice.err" "/tmp/stream-alice-$r.log"
    for p in "${PIDS[@]}"; do stop "$p"; done
done
python3 - "${results[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:]]
first = statistics.median(r["first_frame_ms"] for r in runs)
seek = statistics.median(r["seek_ms"] for r in runs)
print(f"median of {len(runs)}: first frame {first / 1000:.2f} s, seek to 80 % {seek / 1000:.2f} s (targets: under 1 s each)")
PY
