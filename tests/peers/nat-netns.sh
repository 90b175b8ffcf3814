#!/usr/bin/env bash
# nat-netns.sh — two homes behind two NAT routers, and "the internet" between them, for calls.
#
#   nat-netns.sh up PREFIX          make everything below (removes a leftover first)
#   nat-netns.sh nat PREFIX a|b KIND   KIND: cone | symmetric — how that home's router maps
#   nat-netns.sh down PREFIX        remove everything `up` made (idempotent)
#
#   PREFIXbr         a bridge in this (the test's own) namespace: 198.18.0.10/24, "the internet"
#                    as seen from the servers (the nodes, Prosody, coturn listen there)
#   PREFIX-ra        home a's router: wan0 198.18.0.1/24 (port of PREFIXbr), lan0 192.168.1.1/24
#   PREFIX-a         a computer in home a: eth0 192.168.1.2/24, default via 192.168.1.1
#   PREFIX-rb        home b's router: wan0 198.18.0.2/24, lan0 192.168.2.1/24
#   PREFIX-b         a computer in home b: eth0 192.168.2.2/24, default via 192.168.2.1
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

check_prefix() {
  [[ $1 =~ ^[a-z][a-z0-9]{0,5}$ ]] || die "PREFIX must be 1-6 chars [a-z0-9], a letter first: '$1'"
}

down() {
  local p=$1
  for ns in "$p-a" "$p-b" "$p-ra" "$p-rb"; do ip netns del "$ns" 2>/dev/null || true; done
  ip link del "${p}br" 2>/dev/null || true
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
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iifname { "lo", "lan0" } accept
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
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
    ip link add "${p}br" type bridge
    ip addr add 198.18.0.10/24 dev "${p}br"
    ip link set "${p}br" up
    home "$p" a 198.18.0.1 192.168.1
    home "$p" b 198.18.0.2 192.168.2
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
  *) sed -n '2,6p' "$0" >&2; exit 2 ;;
esac
