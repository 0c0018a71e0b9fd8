#!/bin/sh
# make demo: posminid on a synthesized two-head reader (a recording replayed in real time), a POS
# client arming it, a technician's watch, and the status. Everything runs in a private folder.
set -eu
BIN=${BIN:-.build/debug}
DIR=$(mktemp -d /tmp/posmini-demo-XXXXXX)
SOCK="$DIR/posmini.sock"
trap 'kill $DAEMON $WATCH 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT INT TERM

echo "== posminid demo (test card data only)"
echo "   A two-head reader is synthesized: a swipe cut short, then a good swipe of Tracks 1 and 2."
"$BIN/posmini-bench" --demo-wav "$DIR/reader.wav" >/dev/null
"$BIN/posminid" --replay "$DIR/reader.wav" --socket "$SOCK" --state-directory "$DIR" \
    --test-key --log-level info 2>"$DIR/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done

echo
echo "== posminictl watch (what a technician or a second app sees: activity, never card data)"
"$BIN/posminictl" watch --socket "$SOCK" | sed -u 's/^/   watch: /' &
WATCH=$!
sleep 0.3

echo
echo "== posminictl arm --json (what the POS app receives on the socket: ARMED, a failed swipe it"
echo "   can act on while the reader stays armed, then the CARD with masked fields only)"
"$BIN/posminictl" arm --json --timeout 60 --reference order-1042 --socket "$SOCK" | sed -u 's/^/   pos:   /'
sleep 0.3

echo "== posminictl status"
"$BIN/posminictl" status --socket "$SOCK" | sed 's/^/   /'

echo
echo "== the daemon's log (levels kept by journald under systemd; no card data at any level)"
kill $WATCH 2>/dev/null || true
kill -TERM $DAEMON
wait $DAEMON 2>/dev/null || true
sed 's/^/   /' "$DIR/daemon.log"
echo
echo "Note: this build sends CARD events with masked fields only (--insecure-no-encryption);"
echo "the DUKPT-encrypted track data arrives with the encryption work."
