#!/bin/sh
# make demo: posminid on a synthesized two-head reader (a recording replayed in real time), a POS
# app arming it for each card, a technician's watch, and the status. The daemon encrypts under
# the published DUKPT test key. Everything runs in a private folder and is removed at the end.
set -eu
BIN=${BIN:-.build/release}
DIR=$(mktemp -d /tmp/posmini-demo-XXXXXX)
SOCK="$DIR/posmini.sock"
WATCH=
trap 'kill $DAEMON $WATCH 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT INT TERM

echo "== posminid demo (published test cards and the published test key only)"
echo "   A two-head reader is synthesized: a Visa swipe cut short, the Visa again at 40 cm/s,"
echo "   a MasterCard pulled back the other way at 120 cm/s, an Amex speeding up from 15 to 60 cm/s."
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
echo "== the POS app arms the reader for each sale (posminictl arm --json: the socket's own lines)"
for order in 1042 1043 1044; do
    "$BIN/posminictl" arm --json --timeout 30 --reference "order-$order" --socket "$SOCK" >"$DIR/arm-$order.json"
    # What the app shows: masked fields; what it forwards to the processor: the cryptogram.
    python3 - "$DIR/arm-$order.json" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["class"] == "SWIPE_FAILED":
        print(f"   pos:   {m['reference']}: swipe failed ({m['reason']}); the reader stays armed")
    elif m["class"] == "CARD":
        e = m["encrypted"]
        q = m["quality"]
        print(f"   pos:   {m['reference']}: {m['masked_pan']}  exp {m['expiry']}  {m.get('name', '')}"
              f"  ({q['direction']}, {q['speed_cm_s']} cm/s)")
        print(f"          {e['scheme']}  KSN {e['ksn']}  tracks {', '.join(sorted(e['tracks']))}  MAC {e.get('mac', '-')[:16]}…")
    elif m["class"] != "ARMED":
        print(f"   pos:   {line.strip()}")
PY
done
echo
echo "   One CARD line as the app receives it:"
grep '"CARD"' "$DIR/arm-1043.json" | cut -c1-200 | sed 's/^/   /; s/$/…/'

echo
echo "== the processor's side (posminictl decrypt with the published test BDK; it warns on stderr)"
grep '"CARD"' "$DIR/arm-1044.json" | "$BIN/posminictl" decrypt --bdk FEDCBA9876543210F1F1F1F1F1F1F1F1 2>/dev/null | sed 's/^/   /'

echo
echo "== posminictl status"
"$BIN/posminictl" status --socket "$SOCK" | sed 's/^/   /'

echo
echo "== the daemon's log (levels kept by journald under systemd; no card data at any level)"
kill $WATCH 2>/dev/null || true
kill -TERM $DAEMON
wait $DAEMON 2>/dev/null || true
sed 's/^/   /' "$DIR/daemon.log"
