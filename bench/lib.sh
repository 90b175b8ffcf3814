# Shared by the bench scripts: background processes, cleanup on exit, traps, and spheres
# nodes. Defines PIDS, WORK, stop, cleanup, bg, now, json_field, node, cli, household and
# video.


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
    # What a script set up besides (network namespaces...): ON_EXIT, a command.
    if [[ -n ${ON_EXIT:-} ]]; then eval "$ON_EXIT" || true; fi
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

now() { date +%s.%N; }
json_field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])$2)" "$1"; }

# node NAME [ARGS...]: starts `spheres up` of $BIN (the release build) as NAME, with
# NODE_ARGS and ARGS, its folders under $WORK/NAME, its web page on NODE_HTTP (loopback,
# a port the OS picks, unless given); waits until it runs.
node() {
    local name=$1
    shift
    bg "$name" "$BIN" --json --data-dir "$WORK/$name/data" up --http "${NODE_HTTP:-127.0.0.1:0}" \
        --spheres-dir "$WORK/$name/Spheres" ${NODE_ARGS[@]+"${NODE_ARGS[@]}"} "$@"
    local i
    for ((i = 0; i < 600; i++)); do
        grep -q '"event":"running"' "$WORK/$name.out" && return 0
        sleep 0.1
    done
    echo "$name did not start: $(cat "$WORK/$name.err")" >&2
    return 1
}
# cli NAME ARGS...: the CLI of node NAME.
cli() { local name=$1; shift; "$BIN" --json --data-dir "$WORK/$name/data" "$@"; }

# household SPHERE MEMBERS [ARGS...]: alice's node runs the household server (with ARGS),
# makes SPHERE, and MEMBERS member nodes m1..mN join it (each with NODE_ARGS).
household() {
    local sphere=$1 n=$2 i
    shift 2
    node alice --user alice --domain bench.test "$@"
    local running c2s ca
    running=$(grep '"event":"running"' "$WORK/alice.out")
    c2s=$(json_field "$running" "['household']['c2s']")
    ca=$(json_field "$running" "['household']['ca']")
    # An encrypted sphere, as by default; SPHERE_ARGS=--open for an open one.
    # shellcheck disable=SC2086
    cli alice sphere create "$sphere" ${SPHERE_ARGS:-} >/dev/null
    echo "member-secret" >"$WORK/pw"
    for ((i = 1; i <= n; i++)); do
        cli alice household add-user "m$i" --password-file "$WORK/pw" >/dev/null
        node "m$i" --jid "m$i@bench.test" --password-file "$WORK/pw" --xmpp-server "$c2s" --xmpp-ca "$ca"
        cli alice sphere invite "$sphere" "m$i@bench.test" >/dev/null
    done
    for ((i = 1; i <= n; i++)); do
        until cli "m$i" sphere invites | grep -q "$sphere"; do sleep 0.1; done
        cli "m$i" sphere join "$sphere" >/dev/null
    done
}

# video SIZE_MIB OUT: a WebM video of about SIZE_MIB MiB at OUT (VP8, 1280x720, noisy so it does
# not compress, BITRATE bits/s, default 40M), a 20 s segment repeated (stream copy), its index
# (Cues) at the end as ffmpeg writes it, so a seek needs the file's last bytes too. ARGS after
# OUT go to the last ffmpeg (e.g. -metadata title=...). The segment is made once per $WORK.
video() {
    local size=$1 out=$2 base copies i
    shift 2
    if [[ ! -s $WORK/base.webm ]]; then
        echo "making a ${size} MiB video..." >&2
        ffmpeg -v error -f lavfi -i "testsrc2=size=1280x720:rate=25,noise=alls=40:allf=t+u" -t 20 \
            -c:v libvpx -b:v "${BITRATE:-40M}" -deadline realtime -cpu-used 8 -g 50 "$WORK/base.webm"
    fi
    base=$(stat -c %s "$WORK/base.webm")
    copies=$(((size * 1048576 + base - 1) / base))
    for ((i = 0; i < copies; i++)); do echo "file '$WORK/base.webm'"; done >"$WORK/list.txt"
    ffmpeg -v error -f concat -safe 0 -i "$WORK/list.txt" -c copy "$@" "$out"
}
