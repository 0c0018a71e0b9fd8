#!/bin/sh
# make memory: the release daemon's resident memory, idle and after an hour of swipes.
# Two daemons under the published test key: one with no reader; one replaying a two-head
# reader's recording 360 times over (about an hour of audio, 1 440 swipes) as fast as it
# decodes, to a POS app that arms again after every card. Prints VmRSS and its anonymous and
# file-backed parts (/proc/PID/status), and malloc's heap in use (STATUS).
set -eu
BIN=${BIN:-.build/release}
DIR=$(mktemp -d /tmp/posmini-memory-XXXXXX)
IDLE= READER= POS=
trap 'kill $IDLE $READER $POS 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT INT TERM
figures() {
    awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s %5.1f MiB  ", $1, $2 / 1024 }' "/proc/$1/status"
    python3 - "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.write('{"cmd":"status"}\n'); f.flush()
for line in f:
    m = json.loads(line)
    if m["class"] == "STATUS":
        p, c = m["process"], m["counters"]
        print(f"heap {p['heap_bytes'] / 1048576:.2f} MiB  threads {p['threads']}  fds {p['fds']}  swipes {c['swipes']}, read {c['good_reads']}")
        break
PY
}

"$BIN/posmini-bench" --demo-wav "$DIR/reader.wav" >/dev/null
"$BIN/posminid" --test-key --socket "$DIR/idle.sock" --state-directory "$DIR/idle" 2>"$DIR/idle.log" &
IDLE=$!
sleep 3
echo "no reader, 3 s after start:                $(figures $IDLE "$DIR/idle.sock")"

"$BIN/posminid" --test-key --replay "$DIR/reader.wav" --replay-fast --replay-repeat 360 \
    --socket "$DIR/reader.sock" --state-directory "$DIR/reader" 2>"$DIR/reader.log" &
READER=$!
for _ in $(seq 100); do [ -S "$DIR/reader.sock" ] && break; sleep 0.05; done
python3 - "$DIR/reader.sock" >"$DIR/pos.log" <<'PY' &
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.write('{"cmd":"arm","timeout_s":120}\n'); f.flush()
for line in f:
    m = json.loads(line)
    if m["class"] in ("CARD", "TIMEOUT"):
        print(m["class"], flush=True)
        f.write('{"cmd":"arm","timeout_s":120}\n'); f.flush()
    elif m["class"] == "READER_REMOVED":
        break
PY
POS=$!
wait $POS || true
POS=
sleep 2
echo "just after 360 replays (an hour of audio): $(figures $READER "$DIR/reader.sock")"
echo "   cards taken by the POS app: $(grep -c CARD "$DIR/pos.log" || true)"
# The daemon gives back what malloc kept from the burst every half minute.
sleep 35
echo "no reader, a minute after start:           $(figures $IDLE "$DIR/idle.sock")"
echo "the same reader's daemon 35 s later:        $(figures $READER "$DIR/reader.sock")"
