#!/usr/bin/env bash
# Torrent creation benchmark: hash one big file with spheres, mktorrent and transmission-create.
#
#   bench/create.sh [SIZE_GIB]          (default 4; fractions such as 0.25 are fine)
#
# Method
# - One file of SIZE_GIB GiB of random bytes is written once into a temporary folder under /tmp,
#   read once untimed (cat > /dev/null) so every run hashes from a warm page cache, and removed
#   at the end with everything else.
# - Every tool makes a v1 torrent of it with 4 MiB pieces and no tracker:
#     spheres torrent create --piece-size 4M     (hashes on every core)
#     mktorrent -l 22 -t CORES                   (-t only if this mktorrent has it)
#     transmission-create -s 4096                (one hashing thread; Transmission 3.00's CLI
#                                                 polls for completion every 0.5 s, so its times
#                                                 come in steps of about half a second)
#   Each is timed RUNS times (default 3) by hyperfine, which deletes the previous output before
#   each run (outside the timing). The table gives the median wall time and SIZE / median.
# - "spheres speed / tool" is spheres' MiB/s divided by the tool's (above 1: spheres is faster).
# - The SHA-1 bound is what this machine's CPUs can hash with nothing else to do:
#   `openssl speed -multi CORES -bytes 16384 sha1`, its last line's total in 1000s of bytes per
#   second, converted to MiB/s. "% of SHA-1 bound" is each tool's MiB/s against it.
# - As a check, spheres' and mktorrent's info hashes must be equal (same piece size, no
#   tracker, no optional keys in the info dictionary); a mismatch is reported on stderr.
#
# Environment: SPHERES (default target/release/spheres under the repository root), RUNS (3),
# CORES (2: mktorrent threads and openssl processes). Progress goes to stderr, the markdown
# table to stdout. Needs: hyperfine, mktorrent, transmission-create, openssl, python3.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SPHERES=${SPHERES:-$ROOT/target/release/spheres}
case $SPHERES in /*) ;; *) SPHERES=$ROOT/$SPHERES ;; esac
SIZE_GIB=${1:-4}
RUNS=${RUNS:-3}
CORES=${CORES:-2}

log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ -x $SPHERES ]] || die "no spheres binary at $SPHERES (build it, or set SPHERES)"
for tool in hyperfine mktorrent transmission-create openssl python3; do
    command -v "$tool" >/dev/null || die "$tool is missing"
done
BYTES=$(python3 -c 'import sys; n = int(float(sys.argv[1]) * 2**30); print(n if n > 0 else "")' "$SIZE_GIB") ||
    die "SIZE_GIB must be a number"
[[ -n $BYTES ]] || die "SIZE_GIB must be positive"

WORK=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

WORK=$(mktemp -d /tmp/spheres-bench-create.XXXXXX)
DATA=$WORK/payload.bin
log "writing $SIZE_GIB GiB ($BYTES bytes) of random data to $DATA"
head -c "$BYTES" /dev/urandom >"$DATA"
log "warm-up read"
cat "$DATA" >/dev/null

MKTORRENT_THREADS=()
if mktorrent -h 2>&1 | grep -q -- '--threads'; then
    MKTORRENT_THREADS=(-t "$CORES")
else
    log "this mktorrent has no -t; it runs with its own default"
fi

q() { printf '%q' "$1"; }
OUT_SPHERES=$WORK/spheres.torrent
OUT_MKTORRENT=$WORK/mktorrent.torrent
OUT_TRANSMISSION=$WORK/transmission.torrent
CMD_SPHERES="$(q "$SPHERES") --json torrent create $(q "$DATA") -o $(q "$OUT_SPHERES") --piece-size 4M"
CMD_MKTORRENT="mktorrent -l 22 ${MKTORRENT_THREADS[*]} -o $(q "$OUT_MKTORRENT") $(q "$DATA")"
CMD_TRANSMISSION="transmission-create -s 4096 -o $(q "$OUT_TRANSMISSION") $(q "$DATA")"

# One --prepare per command, in command order: each removes only its own tool's output, so all
# three torrents are still there afterwards for the info hash check.
hyperfine --runs "$RUNS" --style basic --export-json "$WORK/hyperfine.json" \
    --prepare "rm -f $(q "$OUT_SPHERES")" \
    --prepare "rm -f $(q "$OUT_MKTORRENT")" \
    --prepare "rm -f $(q "$OUT_TRANSMISSION")" \
    -n spheres "$CMD_SPHERES" \
    -n mktorrent "$CMD_MKTORRENT" \
    -n transmission-create "$CMD_TRANSMISSION" >&2

log "SHA-1 bound: openssl speed -multi $CORES -bytes 16384 sha1"
SHA_LINE=$(openssl speed -multi "$CORES" -bytes 16384 sha1 2>/dev/null | tail -n1)
log "  $SHA_LINE"

ih() { "$SPHERES" --json torrent info "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["info_hash"])'; }
IH_SPHERES=$(ih "$OUT_SPHERES")
IH_MKTORRENT=$(ih "$OUT_MKTORRENT")
if [[ $IH_SPHERES != "$IH_MKTORRENT" ]]; then
    log "warning: spheres made info hash $IH_SPHERES, mktorrent $IH_MKTORRENT: they should agree"
fi

python3 - "$WORK/hyperfine.json" "$BYTES" "$SHA_LINE" "$SIZE_GIB" "$CORES" <<'EOF'
import json, re, sys
path, size, sha_line, size_gib, cores = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
mib = size / 2**20
m = re.fullmatch(r"\s*sha1\s+([0-9.]+)k\s*", sha_line)
if not m:
    sys.exit("cannot read openssl's SHA-1 figure from: %r" % sha_line)
bound = float(m.group(1)) * 1000 / 2**20
results = json.load(open(path))["results"]
medians = {r["command"]: r["median"] for r in results}
runs = {r["command"]: r["times"] for r in results}
base = medians["spheres"]
print("Torrent creation of a %s GiB file, 4 MiB pieces, warm page cache, median of %d runs"
      % (size_gib, len(runs["spheres"])))
print()
print("| tool | median s | MiB/s | spheres speed / tool | % of SHA-1 bound | runs (s) |")
print("|---|---:|---:|---:|---:|---|")
for name in ("spheres", "mktorrent", "transmission-create"):
    med = medians[name]
    print("| %s | %.3f | %.0f | %.2f | %.0f%% | %s |" % (
        name, med, mib / med, med / base, 100 * (mib / med) / bound,
        ", ".join("%.3f" % t for t in runs[name])))
print("| SHA-1 bound (openssl, %s processes) | %.3f | %.0f | %.2f | 100%% | |" % (
    cores, mib / bound, bound, (mib / bound) / base))
EOF
