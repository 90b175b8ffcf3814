# Shared by the bench scripts: background processes, cleanup on exit, traps.
# Sourced by transfer.sh and tracker.sh; defines PIDS, WORK, stop, cleanup and bg.


PIDS=()
WORK=""

# stop PID: SIGTERM, up to 5 s to go, then SIGKILL; reaps it.
stop() {
    local pid=$1 i
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local rest=() p
    for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || rest+=("$p"); done
    PIDS=("${rest[@]}")
}

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${PIDS[@]}"; do stop "$p"; done
    if [[ -n $WORK ]]; then rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# bg NAME CMD...: starts CMD in the background, stdout to $WORK/NAME.out, stderr to NAME.err.
# Sets BG_PID.
bg() {
    local name=$1
    shift
    : >"$WORK/$name.out" # exists before anyone polls it
    "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    BG_PID=$!
    PIDS+=("$BG_PID")
}
