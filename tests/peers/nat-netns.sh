#!/usr/bin/env bash
# nat-netns.sh — two homes behind two NAT routers, and "the internet" between them, for calls.
#
#   nat-netns.sh up PREFIX          make everything below (removes a leftover first)
#   nat-netns.sh nat PREFIX a|b KIND   KIND: cone | symmetric — how that home's router maps
#   nat-netns.sh upnp PREFIX a|b    that home's router (cone) forwards the ports its computer
#                                   asks for: Debian's miniupnpd (UPnP IGD, NAT-PMP and PCP);
#                                   prints the file of its forwardings
#   nat-netns.sh forward PREFIX a|b PORT   that home's router forwards TCP PORT to its
#                                   computer (as its owner would set it up by hand)
#   nat-netns.sh down PREFIX        remove everything `up` made (idempotent)
#
#   PREFIXbr         a bridge in this (the test's own) namespace: $WAN.10/24, "the internet"
#                    as seen from the servers (the nodes, Prosody, coturn listen there)
#   PREFIX-ra        home a's router: wan0 $WAN.1/24 (port of PREFIXbr), lan0 192.168.1.1/24
#   PREFIX-a         a computer in home a: eth0 192.168.1.2/24, default via 192.168.1.1
#   PREFIX-rb        home b's router: wan0 $WAN.2/24, lan0 192.168.2.1/24
#   PREFIX-b         a computer in home b: eth0 192.168.2.2/24, default via 192.168.2.1
#
# WAN (environment of `up`): the internet's first three bytes, 198.18.0 unless given. A
# router forwards ports only when its outside address is a public one (miniupnpd refuses
# 198.18/15, benchmarking's): give one then, e.g. 25.9.0 (traffic to it from this namespace
# goes to the bridge, and nowhere else). Two networks up at once need two WANs.
#
# Routers forward from their LAN out, and back only what answers it (nftables: input and
# forward drop, ct established/related accept, masquerade out wan0), as home routers do. KIND cone keeps a computer's port for
# every destination (endpoint-independent mapping: two cone homes reach each other by hole
# punching); symmetric picks a new random port for each destination (endpoint-dependent
# mapping: only a relay gets through). Routers have no default route, and 198.18.0.0/24
# (RFC 2544, benchmarking) leads nowhere but these namespaces: nothing leaves the machine.
# Needs root, iproute2 and nftables. IPv6 is off in the namespaces.
set -euo pipefail

die() { echo "nat-netns: $*" >&2; exit 1; }

STATE_ROOT=${STATE_ROOT:-/tmp/nat-netns}

check_prefix() {
  [[ $1 =~ ^[a-z][a-z0-9]{0,5}$ ]] || die "PREFIX must be 1-6 chars [a-z0-9], a letter first: '$1'"
}

down() {
  local p=$1
  for ns in "$p-a" "$p-b" "$p-ra" "$p-rb"; do
    [ -e "/run/netns/$ns" ] || continue
    # Whatever still runs there (miniupnpd, a process a test forgot).
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "${p}br" 2>/dev/null || true
  rm -rf "${STATE_ROOT:?}/$p"
  rmdir "$STATE_ROOT" 2>/dev/null || true
}

# A home router's filter: in, only what answers what went out (and what the LAN asks of the
# router itself); through, the LAN out and what answers it (the forward chain left open for
# more rules).
home_chains() {
  cat <<'CHAINS'
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname { "lo", "lan0" } accept
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
CHAINS
}

# A cone router whose forwarding miniupnpd manages (its chains, in the table it expects),
# and which also forwards what was set up by hand (`forward`).
router_upnp() {
  local p=$1 side=$2 net=$3 dir="$STATE_ROOT/$1/$2"
  ip netns exec "$p-r$side" nft -f - <<RULES
flush ruleset
table inet filter {
$(home_chains)
    ct status dnat accept
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
RULES
  ip netns exec "$p-r$side" conntrack -F 2>/dev/null || true
  mkdir -p "$dir"
  cat >"$dir/miniupnpd.conf" <<CONF
ext_ifname=wan0
listening_ip=lan0
http_port=5000
enable_upnp=yes
enable_natpmp=yes
ipv6_disable=yes
secure_mode=yes
system_uptime=yes
min_lifetime=120
max_lifetime=86400
uuid=$(cat /proc/sys/kernel/random/uuid)
serial=$p$side
model_number=1
friendly_name=nat-netns $p $side
lease_file=$dir/upnp.leases
minissdpdsocket=$dir/minissdpd.sock
allow 1024-65535 $net.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
  : >"$dir/upnp.leases"
  setsid ip netns exec "$p-r$side" /usr/sbin/miniupnpd -d -f "$dir/miniupnpd.conf" -P "$dir/miniupnpd.pid" \
    </dev/null >"$dir/miniupnpd.log" 2>&1 &
  local end=$((SECONDS + 10))
  until ip netns exec "$p-r$side" ss -Hltn "sport = :5000" | grep -q . &&
        ip netns exec "$p-r$side" ss -Hlun "sport = :5351" | grep -q .; do
    ((SECONDS < end)) || die "miniupnpd not ready after 10 s: $(tail -n 5 "$dir/miniupnpd.log")"
    sleep 0.05
  done
  echo "$dir/upnp.leases"
}

router_nat() {
  local p=$1 side=$2 kind=$3 random=""
  case $kind in
    cone) ;;
    symmetric) random=" random" ;;
    *) die "KIND is cone or symmetric: '$kind'" ;;
  esac
  ip netns exec "$p-r$side" nft -f - <<EOF
flush ruleset
table inet filter {
  # What the outside sends that answers nothing is dropped here, before the connection
  # tracker keeps it: kept, it would hold the port a computer's next packet out wants.
$(home_chains)
  }
}
table ip nat {
  chain postrouting {
    type nat hook postrouting priority 100;
    oifname "wan0" masquerade$random
  }
}
EOF
}

home() {
  local p=$1 side=$2 wan=$3 net=$4
  local r="$p-r$side" h="$p-$side"
  ip netns add "$r"
  ip netns add "$h"
  for ns in "$r" "$h"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
  ip link add "$p$side-w" type veth peer name wan0 netns "$r"
  ip link set "$p$side-w" master "${p}br" up
  ip -n "$r" addr add "$wan/24" dev wan0
  ip -n "$r" link set wan0 up
  ip link add "$p$side-l" type veth peer name eth0 netns "$h"
  ip link set "$p$side-l" netns "$r"
  ip -n "$r" link set "$p$side-l" name lan0
  ip -n "$r" addr add "$net.1/24" dev lan0
  ip -n "$r" link set lan0 up
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$h" addr add "$net.2/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" route add default via "$net.1"
  router_nat "$p" "$side" cone
}

cmd=${1:-}
case $cmd in
  up)
    [[ $# -eq 2 ]] || die "usage: up PREFIX"
    check_prefix "$2"; p=$2
    down "$p"
    wan=${WAN:-198.18.0}
    [[ $wan =~ ^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "WAN is three bytes: '$wan'"
    ip link add "${p}br" type bridge
    ip addr add "$wan.10/24" dev "${p}br"
    ip link set "${p}br" up
    home "$p" a "$wan.1" 192.168.1
    home "$p" b "$wan.2" 192.168.2
    ;;
  upnp)
    [[ $# -eq 3 ]] || die "usage: upnp PREFIX a|b"
    check_prefix "$2"
    [[ $3 == a || $3 == b ]] || die "the home is a or b: '$3'"
    [ -x /usr/sbin/miniupnpd ] || die "missing /usr/sbin/miniupnpd (apt-get install miniupnpd miniupnpd-nftables)"
    if [[ $3 == a ]]; then net=192.168.1; else net=192.168.2; fi
    router_upnp "$2" "$3" "$net"
    ;;
  forward)
    [[ $# -eq 4 ]] || die "usage: forward PREFIX a|b PORT"
    check_prefix "$2"
    [[ $3 == a || $3 == b ]] || die "the home is a or b: '$3'"
    [[ $4 =~ ^[0-9]{1,5}$ ]] || die "a port: '$4'"
    if [[ $3 == a ]]; then host=192.168.1.2; else host=192.168.2.2; fi
    ip netns exec "$2-r$3" nft add table ip manual
    ip netns exec "$2-r$3" nft add chain ip manual prerouting '{ type nat hook prerouting priority -90; }'
    ip netns exec "$2-r$3" nft add rule ip manual prerouting iifname wan0 tcp dport "$4" dnat to "$host:$4"
    ;;
  nat)
    [[ $# -eq 4 ]] || die "usage: nat PREFIX a|b cone|symmetric"
    check_prefix "$2"
    [[ $3 == a || $3 == b ]] || die "the home is a or b: '$3'"
    router_nat "$2" "$3" "$4"
    # What the old rules mapped stays mapped: forget it.
    ip netns exec "$2-r$3" conntrack -F 2>/dev/null || true
    ;;
  down)
    [[ $# -eq 2 ]] || die "usage: down PREFIX"
    check_prefix "$2"
    down "$2"
    ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
