#!/usr/bin/env bash
# Links in the browser (issue 16, benchmarks): from opening a link's page to the first video
# frame and after a seek, for a link served by the node only and one whose viewers share with
# each other; and with VIEWERS viewers of the shared link, the share of bytes that reached
# them from other viewers rather than from the node.
#
#   bench/links.sh [SIZE_MIB] [RUNS] [VIEWERS]      (defaults: 128 MiB, 3 runs, 5 viewers)
#
# Method
# - One real `spheres up` of the release build on loopback (alice, the household server), an
#   open sphere (a link of an encrypted sphere opens in its page only), one video shared: WebM
#   (VP8, 1280x720, noisy so it does not compress, BITRATE bits/s, default 40M: a 5 MB/s
#   stream, as fast as the default cap; 8M is a phone's 720p) made by ffmpeg, a 20 s segment repeated
#   (stream copy) up to SIZE_MIB, its index (Cues) at the end as ffmpeg writes it, so a seek
#   needs the file's last bytes too. Two links to it: `--no-p2p` and the default.
# - bench/links.mjs drives Debian's Chromium (playwright-core), each page in a profile of its
#   own. The node's upload is modelled per page: Chromium's network emulation caps each page's
#   HTTP at RATE bytes/s (default 5000000, as a home connection; RATE=0: no cap). It does not
#   cap WebRTC, as a viewer's upload to another viewer is not the node's.
# - Play: in the page, from play() to currentTime > 0 and playing; then from a seek to 80 % of
#   the duration to playing past it (readyState >= 3, not seeking). The page's own clock,
#   polled every frame. RUNS runs of each link, fresh profile each time, median reported. The
#   shared link's page here has nobody to share with: what this measures is the cost of our
#   page's path (its swarm and service worker) against the node's plain HTTP.
# - Viewers: VIEWERS pages of the shared link, one after another (each waits until it is
#   connected to up to 3 earlier ones), each reading the video whole through its page (as its
#   player and a download do), the earlier ones staying open. Each page counts what it got
#   from viewers and from the node; reported: the share from viewers over all of them.
#   Targets (issue 16): first frame under 2 s, after a seek under 1 s; at least 60 % of the
#   bytes from viewers with 5 viewers.
#
# Needs: cargo build --release -p spheres; prosody, ffmpeg, chromium and tests/browser's npm
# packages with WebTorrent (scripts/install-test-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SIZE_MIB=${1:-128}
RUNS=${2:-3}
VIEWERS=${3:-5}
BIN=$PWD/target/release/spheres
[[ -x $BIN ]] || { echo "build first: cargo build --release -p spheres" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/spheres-bench-links.XXXXXX")

video "$SIZE_MIB" "$WORK/film.webm"

SPHERE_ARGS=--open household Bench 0
cli alice share Bench "$WORK/film.webm" >/dev/null
until cli alice shares Bench | grep -q '"seeding"'; do sleep 0.2; done
direct=$(json_field "$(cli alice link create Bench film.webm --no-p2p)" "['url']")
p2p=$(json_field "$(cli alice link create Bench film.webm)" "['url']")

DIRECT=$direct P2P=$p2p RUNS=$RUNS VIEWERS=$VIEWERS RATE=${RATE:-5000000} command node bench/links.mjs
