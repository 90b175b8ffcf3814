#!/usr/bin/env bash
# Calls (issue 17, benchmarks): from clicking "Video call" to the first frame of the other
# side's video on the caller's page, direct and through the household's relay, against WebRTC
# alone in the same browser.
#
#   bench/calls.sh [RUNS]      (default: 5)
#   NAT=1 bench/calls.sh [RUNS]   across two simulated home routers (network namespaces)
#
# Method
# - Two real `spheres up` of the release build on loopback (BIN= to use another): alice runs
#   the household server (Prosody, and coturn for the relay), m1 signs in to it; they are
#   each other's contacts.
# - bench/calls.mjs drives Debian's Chromium (playwright-core) with its fake camera and
#   microphone: alice's page clicks "Video call"; m1's page answers as soon as it rings (a
#   person would take a second or two more: that is not measured). On alice's page, from the
#   click to the first frame of m1's video (requestVideoFrameCallback), the page's own clock.
#   The path: getUserMedia, the ring over XMPP (XEP-0353) through both nodes and Prosody,
#   the answer, the offer and answer as Jingle, candidates trickled, ICE, DTLS, the first
#   frame. RUNS calls each way, hung up between them, median reported.
# - Relay: m1's page hides its address (Settings' choice: relay only), so every path goes
#   through coturn on loopback.
# - Baseline: in alice's page, two RTCPeerConnections of that browser, the same fake
#   camera, descriptions and candidates handed over in JavaScript: what WebRTC alone takes.
#   Reported: the ratio of each to it. Target (issue 17): under 2 s from the click.
# - NAT=1: tests/peers/nat-netns.sh makes two homes, each a computer behind its own NAT
#   router, and "the internet" between them, where the nodes, Prosody and coturn listen
#   (198.18.7.10). Each page runs in a Chromium inside its home. Direct: both routers keep a
#   computer's port (cone), the call goes home to home through holes punched in both. Relay:
#   home b's router then picks a new port for each destination (symmetric), so only coturn
#   gets the call through (no relay-only setting). The routers add no delay (no netem here).
#
# Needs: cargo build --release -p spheres; prosody, coturn, chromium and tests/browser's npm
# packages (scripts/install-test-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

RUNS=${1:-5}
BIN=${BIN:-$PWD/target/release/spheres}
[[ -x $BIN ]] || { echo "build first: cargo build --release -p spheres" >&2; exit 1; }
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/spheres-bench-calls.XXXXXX")

if [[ ${NAT:-0} == 1 ]]; then
    NAT_PREFIX=bcalls NET=198.18.7
    ON_EXIT="tests/peers/nat-netns.sh down $NAT_PREFIX"
    WAN=$NET tests/peers/nat-netns.sh up "$NAT_PREFIX"
    export NETNS_A=$NAT_PREFIX-a NETNS_B=$NAT_PREFIX-b NAT_SCRIPT=$PWD/tests/peers/nat-netns.sh NAT_PREFIX
    NODE_HTTP=$NET.10:0
    household Bench 1 --xmpp-listen "$NET.10"
else
    household Bench 1
fi
cli alice contact add m1@bench.test >/dev/null
until cli m1 contact list | grep -q 'alice@bench.test'; do sleep 0.1; done
cli m1 contact add alice@bench.test >/dev/null
online() { cli "$1" contact list | python3 -c "import json,sys; print(any(c['jid']==sys.argv[1] and c['online'] for c in json.load(sys.stdin)['contacts']))" "$2"; }
until [[ $(online alice m1@bench.test) == True && $(online m1 alice@bench.test) == True ]]; do sleep 0.1; done

NODE_A=$(json_field "$(cli alice status)" "['http']") NODE_B=$(json_field "$(cli m1 status)" "['http']") \
    DATA_A=$WORK/alice/data DATA_B=$WORK/m1/data RUNS=$RUNS command node bench/calls.mjs
