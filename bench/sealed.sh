#!/usr/bin/env bash
# What sealing costs (issue 15, docs/decisions/0015): one file, seed -> leech on loopback
# with our own engine, as an open torrent and as a sealed one (the same bytes, encrypted on
# read by the seed, verified encrypted and decrypted before writing by the leech).
#
#   bench/sealed.sh [SIZE_MIB]        (default 1024, i.e. 1 GiB)
#
# Method
# - One file of SIZE_MIB random bytes is written once into a temporary folder under /tmp
#   (removed at the end, with everything else).
# - Two torrents of it are made by `bt make` (crates/spheres-engine/examples/bt.rs), both
#   private with 1 MiB pieces: an open one, and a sealed one under a random key.
# - For each, one `bt seed` is started and kept for its runs; each run starts `bt get
#   --peer SEED` into a fresh folder and takes the time the leech reports from adding the
#   torrent to every piece in and verified ({"event":"complete","seconds":…}); the download
#   is compared byte for byte with the original (untimed), then deleted. The pairs take
#   turns, run after run (open, sealed, open, sealed...), so a slow spell of the shared
#   machine falls on both.
# - The table gives each pair's median MiB/s over RUNS runs (default 5) and the ratio sealed /
#   open (1.0 = sealing costs nothing; the issue's target is above 0.9).
#
# Environment: BT (default target/release/examples/bt: `cargo build --release -p
# spheres-engine --example bt`), RUNS (5), TIMEOUT (seconds for any one wait, 600).
# Only 127.0.0.1 is used. Progress goes to stderr, the markdown table to stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BT=${BT:-$ROOT/target/release/examples/bt}
case $BT in /*) ;; *) BT=$ROOT/$BT ;; esac
SIZE_MIB=${1:-1024}
RUNS=${RUNS:-5}
TIMEOUT=${TIMEOUT:-600}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ $SIZE_MIB =~ ^[0-9]+$ && $SIZE_MIB -gt 0 ]] || die "SIZE_MIB must be a positive whole number"
[[ -x $BT ]] || die "no bt example at $BT (cargo build --release -p spheres-engine --example bt)"

WORK=$(mktemp -d /tmp/spheres-sealed-bench.XXXXXX)
mkdir -p "$WORK/data"
FILE=$WORK/data/film.bin
log "writing $SIZE_MIB MiB of random bytes"
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE"
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

"$BT" make "$FILE" "$WORK/open.torrent" --piece-size 1048576 >/dev/null
"$BT" make "$FILE" "$WORK/sealed.torrent" --piece-size 1048576 --seal "$KEY" >/dev/null

# wait_line FILE PATTERN: until FILE has a line matching PATTERN (or TIMEOUT).
wait_line() {
    local i
    for ((i = 0; i < TIMEOUT * 10; i++)); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    die "timed out waiting for $2 in $1: $(cat "${1%.out}.err" 2>/dev/null)"
}

declare -A SEED
for pair in open sealed; do
    extra=()
    [[ $pair == sealed ]] && extra=(--seal "$KEY")
    bg "seed-$pair" "$BT" seed "$WORK/$pair.torrent" "$FILE" "${extra[@]}"
    wait_line "$WORK/seed-$pair.out" '"event":"seeding"'
    SEED[$pair]=$(json_field "$(grep '"seeding"' "$WORK/seed-$pair.out")" "['listen']")
    log "$pair seed on ${SEED[$pair]}"
done

declare -A TIMES
for ((run = 1; run <= RUNS; run++)); do
    for pair in open sealed; do
        extra=()
        [[ $pair == sealed ]] && extra=(--seal "$KEY" --name film.bin)
        out=$WORK/get-$pair-$run
        line=$(timeout "$TIMEOUT" "$BT" get "$WORK/$pair.torrent" --out "$out" \
            --peer "${SEED[$pair]}" "${extra[@]}" | grep '"complete"')
        secs=$(json_field "$line" "['seconds']")
        cmp -s "$FILE" "$out/film.bin" || die "$pair run $run: the download differs"
        rm -rf "$out"
        TIMES[$pair]+="$secs "
        log "run $run $pair: $secs s"
    done
done

median_rate() {
    python3 - "$SIZE_MIB" "$@" <<'PY'
import statistics, sys
size = float(sys.argv[1])
print(f"{size / statistics.median(float(t) for t in sys.argv[2:]):.0f}")
PY
}
# shellcheck disable=SC2086
open_rate=$(median_rate ${TIMES[open]})
# shellcheck disable=SC2086
sealed_rate=$(median_rate ${TIMES[sealed]})
ratio=$(python3 -c "print(f'{$sealed_rate / $open_rate:.2f}')")

echo "| $SIZE_MIB MiB, median of $RUNS | open MiB/s | sealed MiB/s | sealed / open |"
echo "|---|---:|---:|---:|"
echo "| $(date -u +%F) | $open_rate | $sealed_rate | **$ratio** |"
