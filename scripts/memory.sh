#!/bin/sh
# make memory: the release daemon's resident memory, idle and after use. Three daemons under the
# published test key: one with no reader; two replaying a two-head reader's recording (four
# swipes in 10 s, one of them cut short on purpose) as fast as they decode, 36 times over (six
# minutes of audio) and 360 times (an hour, 1 440 swipes), each to a POS app that arms again
# after every card. Each daemon is a process of its own, so its code pages depend on what it
# touched after handing back its start-up pages; whether use makes one process grow is what
# make soak-live measures (the same process after its first minute and after an hour). Prints
# VmRSS and its anonymous and file-backed parts (/proc/PID/status), and malloc's heap in use,
# threads, descriptors and reads (STATUS). A daemon hands back its start-up code pages half a
# minute after it starts: figures before that show what start-up touched.
set -eu
BIN=${BIN:-.build/release}
DIR=$(mktemp -d /tmp/posmini-memory-XXXXXX)
PIDS=
trap 'kill $PIDS 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"' EXIT INT TERM
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
# A POS app: arms, and arms again after each card, until the reader's recording is over.
pos() {
    python3 - "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rw")
f.write('{"cmd":"arm","timeout_s":120}\n'); f.flush()
cards = 0
for line in f:
    m = json.loads(line)
    if m["class"] in ("CARD", "TIMEOUT"):
        cards += m["class"] == "CARD"
        f.write('{"cmd":"arm","timeout_s":120}\n'); f.flush()
    elif m["class"] == "READER_REMOVED":
        break
print(cards)
PY
}
start() {   # name, repeats
    "$BIN/posminid" --test-key --replay "$DIR/reader.wav" --replay-fast --replay-repeat "$2" \
        --socket "$DIR/$1.sock" --state-directory "$DIR/$1" 2>"$DIR/$1.log" &
    PIDS="$PIDS $!"
    eval "PID_$1=$!"
    for _ in $(seq 100); do [ -S "$DIR/$1.sock" ] && break; sleep 0.05; done
}

"$BIN/posmini-bench" --demo-wav "$DIR/reader.wav" >/dev/null
# One daemon at a time: processes of one program share its code pages, and the kernel maps into
# each the pages around a fault that another has read (fault-around), which would blur the
# figures.
"$BIN/posminid" --test-key --socket "$DIR/idle.sock" --state-directory "$DIR/idle" 2>"$DIR/idle.log" &
IDLE=$!
PIDS="$IDLE"
sleep 3
echo "no reader, 3 s after start:            $(figures $IDLE "$DIR/idle.sock")"
# Half a minute in, the daemon hands back its start-up pages (and malloc's free ones).
sleep 37
echo "no reader, 40 s after start:           $(figures $IDLE "$DIR/idle.sock")"
sleep 50
echo "no reader, 90 s after start:           $(figures $IDLE "$DIR/idle.sock")"
kill $IDLE
for run in "short 36 6-minutes" "long 360 an-hour"; do
    set -- $run
    start "$1" "$2"
    pos "$DIR/$1.sock" >"$DIR/$1.cards"
    # The daemon gives back what malloc kept from the burst every half minute.
    sleep 35
    eval "pid=\$PID_$1"
    echo "$(printf '%-38s' "$(echo "$3" | tr - ' ') of audio, then 35 s:")$(figures $pid "$DIR/$1.sock")   cards $(cat "$DIR/$1.cards")"
    kill $pid
done
