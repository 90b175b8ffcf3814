#!/usr/bin/env bash
# upnp-netns.sh — a NAT router with Debian's miniupnpd between two network namespaces.
#
#   upnp-netns.sh up PREFIX MODE   MODE: igd2 | igd1 | natpmp | pcp | pmp | all | none
#   upnp-netns.sh up-lan2 PREFIX   add a second LAN host PREFIX-lan2 (192.168.77.3) on the same bridge
#   upnp-netns.sh down PREFIX      remove everything `up` made (idempotent)
#   upnp-netns.sh env PREFIX       print the variables again
#
#   PREFIX-lan  eth0 192.168.77.2/24, default via 192.168.77.1
#   PREFIX-lan2 eth0 192.168.77.3/24, default via 192.168.77.1        (up-lan2 only)
#   PREFIX-router br0 192.168.77.1/24 (bridge; ports lan0 [, lan1])   wan0 25.0.0.1/24, default via 25.0.0.2
#                 nftables: table inet filter (forward drop + miniupnpd chains, masquerade out wan0)
#                 miniupnpd (unless MODE=none), config/pid/leases/log in $STATE_DIR
#   PREFIX-net  eth0 25.0.0.2/24 (the "internet" host; 25/8 because miniupnpd refuses private WAN IPs)
#
# MODE: igd2   UPnP IGDv2 (miniupnpd default), NAT-PMP/PCP off
#       igd1   UPnP forced to IGDv1 (force_igd_desc_v1=yes), NAT-PMP/PCP off
#       natpmp NAT-PMP and PCP on (miniupnpd cannot enable one without the other), UPnP off
#       pcp    as natpmp, but nft rejects NAT-PMP (version 0) packets to udp/5351: a PCP-only router
#       pmp    as natpmp, but nft rejects PCP (version 2) packets to udp/5351: a NAT-PMP-only router
#       all    UPnP IGDv2 + NAT-PMP + PCP
#       none   no miniupnpd: a plain NAT router with no mapping protocol
# Env:  BRIDGE=0     LAN side is the bare veth lan0 instead of bridge br0 (up-lan2 then impossible)
#       PMP_FILTER=reject|drop   how pcp/pmp modes refuse the other protocol (default reject:
#                    ICMP port unreachable, so clients fail fast)
#       LAN_IPV6=1   keep IPv6 (link-local, no DAD) on the LAN hosts and the router (default: IPv6
#                    disabled in all namespaces; miniupnpd always runs with ipv6_disable=yes)
#       WAN_BASE     the first three bytes of the WAN /24 (default 25.0.0; 100.64.0 for a router
#                    that is itself behind a provider's NAT)
#       STATE_ROOT   where per-PREFIX state dirs go (default /tmp/upnp-netns)
#       MINIUPNPD_ARGS extra args
#       ALLOW        miniupnpd permission rule line(s) before the final deny (default
#                    "allow 1024-65535 192.168.77.0/24 1024-65535"). CAUTION: a NAT-PMP/PCP request
#                    whose internal port no rule allows makes miniupnpd 2.3.1 walk all 65535
#                    external ports (~70 s, 65k log lines) and answer nothing else meanwhile.
# Output of up/env: shell-sourceable KEY=value lines on stdout; progress goes to stderr.
# Needs root, iproute2 (ip, ss), nftables, miniupnpd (Debian: miniupnpd + miniupnpd-nftables).
set -euo pipefail

STATE_ROOT=${STATE_ROOT:-/tmp/upnp-netns}
LAN_NET=192.168.77.0/24 LAN_GW=192.168.77.1 LAN_HOST=192.168.77.2 LAN2_HOST=192.168.77.3
# WAN_BASE=100.64.0 puts the router's outside on a carrier-grade NAT range, as behind a
# provider's own NAT (double NAT): miniupnpd then refuses to map anything.
WAN_BASE=${WAN_BASE:-25.0.0}
WAN_NET=$WAN_BASE.0/24 WAN_IP=$WAN_BASE.1 NET_HOST=$WAN_BASE.2
HTTP_PORT=5000
PMP_PORT=5351

die() { echo "upnp-netns: $*" >&2; exit 1; }
log() { echo "upnp-netns: $*" >&2; }
usage() { sed -n '2,8p' "$0" >&2; exit 2; }

check_prefix() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_]{0,5}$ ]] || die "PREFIX must be 1-6 chars [A-Za-z0-9_]: '$1'"
}

names() {
  P=$1
  NS_LAN=$P-lan NS_LAN2=$P-lan2 NS_ROUTER=$P-router NS_NET=$P-net
  STATE_DIR=$STATE_ROOT/$P
}

rexec() { ip netns exec "$NS_ROUTER" "$@"; }

print_env() {
  local pid=""
  [ -f "$STATE_DIR/miniupnpd.pid" ] && pid=$(cat "$STATE_DIR/miniupnpd.pid")
  local mode; mode=$(cat "$STATE_DIR/mode")
  local lanif; lanif=$(cat "$STATE_DIR/lanif")
  cat <<EOF
UPNP_PREFIX=$P
UPNP_MODE=$mode
NS_LAN=$NS_LAN
NS_ROUTER=$NS_ROUTER
NS_NET=$NS_NET
LAN_IF=eth0
LAN_NET=$LAN_NET
LAN_HOST=$LAN_HOST
LAN_GW=$LAN_GW
ROUTER_LAN_IF=$lanif
ROUTER_WAN_IF=wan0
WAN_NET=$WAN_NET
WAN_IP=$WAN_IP
NET_HOST=$NET_HOST
NET_IF=eth0
MINIUPNPD_PID=$pid
MINIUPNPD_CONF=$( [ -n "$pid" ] && echo "$STATE_DIR/miniupnpd.conf" )
MINIUPNPD_LOG=$( [ -n "$pid" ] && echo "$STATE_DIR/miniupnpd.log" )
MINIUPNPD_LEASES=$( [ -n "$pid" ] && echo "$STATE_DIR/upnp.leases" )
IGD_ROOTDESC_URL=$( [[ $mode == igd* || $mode == all ]] && echo "http://$LAN_GW:$HTTP_PORT/rootDesc.xml" )
PMP_ADDR=$( [[ $mode == natpmp || $mode == pcp || $mode == pmp || $mode == all ]] && echo "$LAN_GW:$PMP_PORT" )
NFT_TABLE='inet filter'
NFT_CHAINS='miniupnpd prerouting_miniupnpd postrouting_miniupnpd'
UPNP_STATE_DIR=$STATE_DIR
EOF
  if [ -e "/run/netns/$NS_LAN2" ]; then
    echo "NS_LAN2=$NS_LAN2"
    echo "LAN2_HOST=$LAN2_HOST"
  fi
}

# nft ruleset for the router. $1 = LAN interface, $2 = mode
ruleset() {
  local lanif=$1 mode=$2 filt=${PMP_FILTER:-reject}
  [[ $filt == reject || $filt == drop ]] || die "PMP_FILTER must be reject or drop"
  local pmp_rule=""
  # @th,64,8 = first byte of the UDP payload = NAT-PMP/PCP version (0 = NAT-PMP, 2 = PCP)
  case $mode in
    pcp) pmp_rule="iifname \"$lanif\" udp dport $PMP_PORT @th,64,8 0 counter $filt" ;;
    pmp) pmp_rule="iifname \"$lanif\" udp dport $PMP_PORT @th,64,8 != 0 counter $filt" ;;
  esac
  cat <<EOF
table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
    $pmp_rule
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "$lanif" oifname "$lanif" accept   # LAN<->LAN through br0 when br_netfilter is loaded
    iifname "$lanif" oifname "wan0" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan0" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
EOF
}

miniupnpd_conf() {
  local lanif=$1 mode=$2 upnp=yes pmp=no v1=no
  case $mode in
    igd2) ;;
    igd1) v1=yes ;;
    natpmp|pcp|pmp) upnp=no pmp=yes ;;
    all) pmp=yes ;;
  esac
  cat <<EOF
ext_ifname=wan0
listening_ip=$lanif
http_port=$HTTP_PORT
enable_upnp=$upnp
enable_natpmp=$pmp
force_igd_desc_v1=$v1
ipv6_disable=yes
secure_mode=yes
system_uptime=yes
notify_interval=30
clean_ruleset_interval=600
min_lifetime=120
max_lifetime=86400
uuid=$(cat /proc/sys/kernel/random/uuid)
serial=$P
model_number=1
friendly_name=upnp-netns $P ($mode)
lease_file=$STATE_DIR/upnp.leases
minissdpdsocket=$STATE_DIR/minissdpd.sock
${ALLOW:-allow 1024-65535 $LAN_NET 1024-65535}
deny 0-65535 0.0.0.0/0 0-65535
EOF
}

# gone, or a zombie (our parent shell is gone, so whoever adopted it reaps it later)
not_running() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }

# IPv6 off, or with LAN_IPV6=1 link-local only and without DAD (usable at once, for ff15:: LSD)
ipv6_setup() {
  if [ "${LAN_IPV6:-0}" = 1 ]; then
    ip netns exec "$1" sh -c 'for f in /proc/sys/net/ipv6/conf/*/accept_dad; do echo 0 >"$f"; done'
  else
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  fi
}

wait_for() { # wait_for SECONDS cmd...
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < end)) || return 1
    sleep 0.05
  done
}

cmd_up() {
  local mode=$1
  case $mode in igd2|igd1|natpmp|pcp|pmp|all|none) ;; *) die "unknown MODE '$mode'";; esac
  [ "$(id -u)" = 0 ] || die "needs root"
  for b in ip nft; do command -v $b >/dev/null || die "missing $b"; done
  [ "$mode" = none ] || [ -x /usr/sbin/miniupnpd ] || die "missing /usr/sbin/miniupnpd (apt-get install miniupnpd)"
  # Another network's `down` may remove the (then empty) state root between our two
  # mkdirs: only an existing state dir is a reason to stop.
  local tries=0
  until mkdir -p "$STATE_ROOT" && mkdir "$STATE_DIR" 2>/dev/null; do
    [ -e "$STATE_DIR" ] && die "$STATE_DIR exists: run '$0 down $P' first"
    tries=$((tries + 1))
    ((tries < 5)) || die "cannot create $STATE_DIR"
  done
  trap 'rc=$?; if ((rc)); then log "up failed (rc=$rc), tearing down"; [ -f "$STATE_DIR/miniupnpd.log" ] && tail -n 20 "$STATE_DIR/miniupnpd.log" >&2; cmd_down >/dev/null 2>&1 || true; fi' EXIT
  local lanif=br0
  [ "${BRIDGE:-1}" = 0 ] && lanif=lan0
  echo "$mode" >"$STATE_DIR/mode"
  echo "$lanif" >"$STATE_DIR/lanif"

  local ns
  for ns in "$NS_LAN" "$NS_ROUTER" "$NS_NET"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  done
  # veths are created directly inside the namespaces: no name clash in the root namespace
  ip link add lan0 netns "$NS_ROUTER" type veth peer name eth0 netns "$NS_LAN"
  ip link add wan0 netns "$NS_ROUTER" type veth peer name eth0 netns "$NS_NET"

  # sysctls are per namespace; set them explicitly (IPv4 ones inherit from the root namespace)
  rexec sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
  ipv6_setup "$NS_LAN"; ipv6_setup "$NS_ROUTER"
  ip netns exec "$NS_NET" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1

  if [ "$lanif" = br0 ]; then
    ip -n "$NS_ROUTER" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    # if br_netfilter is loaded (docker does that), bridged frames would traverse the router's
    # inet forward chain (policy drop); per-netns sysctl, appears once br_netfilter is loaded
    rexec sh -c '[ ! -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 net.bridge.bridge-nf-call-arptables=0' 
    ip -n "$NS_ROUTER" link set lan0 master br0
    ip -n "$NS_ROUTER" link set lan0 up
  fi
  ip -n "$NS_ROUTER" addr add $LAN_GW/24 dev "$lanif"
  ip -n "$NS_ROUTER" link set "$lanif" up
  ip -n "$NS_ROUTER" addr add $WAN_IP/24 dev wan0
  ip -n "$NS_ROUTER" link set wan0 up
  ip -n "$NS_ROUTER" route add default via $NET_HOST dev wan0

  ip -n "$NS_LAN" addr add $LAN_HOST/24 dev eth0
  ip -n "$NS_LAN" link set eth0 up
  ip -n "$NS_LAN" route add default via $LAN_GW dev eth0

  ip -n "$NS_NET" addr add $NET_HOST/24 dev eth0
  ip -n "$NS_NET" link set eth0 up

  ruleset "$lanif" "$mode" >"$STATE_DIR/ruleset.nft"
  rexec nft -f "$STATE_DIR/ruleset.nft"

  if [ "$mode" != none ]; then
    miniupnpd_conf "$lanif" "$mode" >"$STATE_DIR/miniupnpd.conf"
    : >"$STATE_DIR/upnp.leases"
    # -d: foreground, logs to stderr (no syslog needed). setsid: own session, survives the caller.
    # (job control is off in this script, so setsid does not fork and \$! is miniupnpd itself)
    # shellcheck disable=SC2086
    setsid ip netns exec "$NS_ROUTER" /usr/sbin/miniupnpd -d ${MINIUPNPD_ARGS:-} \
      -f "$STATE_DIR/miniupnpd.conf" -P "$STATE_DIR/miniupnpd.pid" \
      </dev/null >"$STATE_DIR/miniupnpd.log" 2>&1 &
    local pid=$!
    # ready = sockets bound and pid file written; give up at once if miniupnpd exits
    listening() {
      not_running "$pid" && die "miniupnpd exited, see $STATE_DIR/miniupnpd.log"
      if [[ $mode == igd* || $mode == all ]]; then
        rexec ss -Hltn "sport = :$HTTP_PORT" | grep -q . || return 1
      fi
      if [[ $mode != igd* ]]; then
        rexec ss -Hlun "sport = :$PMP_PORT" | grep -q . || return 1
      fi
      test -s "$STATE_DIR/miniupnpd.pid"
    }
    local end=$((SECONDS + 10))
    until listening; do
      ((SECONDS < end)) || die "miniupnpd not ready after 10 s"
      sleep 0.05
    done
    [ "$(cat "$STATE_DIR/miniupnpd.pid")" = "$pid" ] || log "note: pid file $(cat "$STATE_DIR/miniupnpd.pid") != \$! $pid"
  fi
  trap - EXIT
  print_env
}

cmd_up_lan2() {
  [ -d "$STATE_DIR" ] || die "no $STATE_DIR: run up first"
  [ "$(cat "$STATE_DIR/lanif")" = br0 ] || die "up-lan2 needs the bridge (BRIDGE=1)"
  ip netns add "$NS_LAN2"
  ip -n "$NS_LAN2" link set lo up
  ipv6_setup "$NS_LAN2"
  ip link add lan1 netns "$NS_ROUTER" type veth peer name eth0 netns "$NS_LAN2"
  ip -n "$NS_ROUTER" link set lan1 master br0
  ip -n "$NS_ROUTER" link set lan1 up
  ip -n "$NS_LAN2" addr add $LAN2_HOST/24 dev eth0
  ip -n "$NS_LAN2" link set eth0 up
  ip -n "$NS_LAN2" route add default via $LAN_GW dev eth0
  print_env
}

cmd_down() {
  local pid ns p
  if [ -f "$STATE_DIR/miniupnpd.pid" ] || [ -f "$STATE_DIR/mode" ]; then
    pid=$(cat "$STATE_DIR/miniupnpd.pid" 2>/dev/null || true)
    # only if that pid is still a miniupnpd (pid files outlive processes)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = miniupnpd ]; then
      kill -TERM "$pid" 2>/dev/null || true   # exits at once; its nft rules stay (the netns goes next)
      wait_for 5 not_running "$pid" || kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  for ns in "$NS_LAN" "$NS_LAN2" "$NS_ROUTER" "$NS_NET"; do
    [ -e "/run/netns/$ns" ] || continue
    # anything still running in a namespace we made (listeners a test forgot, etc.)
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
    ip netns del "$ns"   # takes its veths and the bridge with it
  done
  rm -rf "$STATE_DIR"
  rmdir "$STATE_ROOT" 2>/dev/null || true
}

[ $# -ge 2 ] || usage
cmd=$1
check_prefix "$2"
names "$2"
case $cmd in
  up)      [ $# -eq 3 ] || usage; t0=$EPOCHREALTIME; cmd_up "$3"
           log "up $P $3 took $(( (${EPOCHREALTIME/./} - ${t0/./}) / 1000 )) ms" ;;
  up-lan2) cmd_up_lan2 ;;
  down)    cmd_down ;;
  env)     [ -d "$STATE_DIR" ] || die "no $STATE_DIR"; print_env ;;
  *)       usage ;;
esac
