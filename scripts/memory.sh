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
export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)"
figures() {   # pid, socket
    python3 - "$1" "$2" <<'PY'
import sys
from posmini_rig import Client, describe, resident
m = Client(sys.argv[2]).status()
print(f"{describe(resident(sys.argv[1]), m['process'])}  swipes {m['counters']['swipes']}, read {m['counters']['good_reads']}")
PY
}
# A POS app: arms, and arms again after each card, until the reader's recording is over.
pos() {
    python3 -c 'import sys; from posmini_rig import pos_app; print(pos_app(sys.argv[1], until_removed=True))' "$1"
}
start() {   # name, repeats, recording
    "$BIN/posminid" --test-key --replay "$DIR/$3" --replay-fast --replay-repeat "$2" \
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
    start "$1" "$2" reader.wav
    pos "$DIR/$1.sock" >"$DIR/$1.cards"
    # The daemon gives back what malloc kept from the burst every half minute.
    sleep 35
    eval "pid=\$PID_$1"
    echo "$(printf '%-38s' "$(echo "$3" | tr - ' ') of audio, then 35 s:")$(figures $pid "$DIR/$1.sock")   cards $(cat "$DIR/$1.cards")"
    kill $pid
done

# One process through an hour of audio as fast as it decodes (make soak-live does it in real
# time): the figures while the recording plays, early and after 58 minutes, with the
# same recording loaded in both (the first figure comes when the daemon first answers, a few
# minutes of audio in); the half-minute hand-back and trim come later.
"$BIN/posmini-bench" --soak-wav "$DIR/minute.wav"
start hour 60 minute.wav
HOUR=$PID_hour
python3 - "$DIR/hour.sock" "$HOUR" <<'PY'
import sys
from posmini_rig import Client, describe, in_background, pos_app, resident
path, pid = sys.argv[1], int(sys.argv[2])
in_background(pos_app, path)
admin = Client(path)
marks, taken = [30, 870], []
while len(taken) < 2:
    m = admin.status()
    swipes = m["counters"]["swipes"]
    if swipes >= marks[len(taken)]:
        taken.append((swipes, resident(pid), m["process"]))
    if not m["readers"] or not m["readers"][0].get("present", True):
        break
for swipes, memory, p in taken:
    print(f"one process, {swipes:4d} swipes read so far: {describe(memory, p)}")
if len(taken) == 2:
    print(f"one process, from {taken[0][0]} to {taken[1][0]} swipes: VmRSS {(taken[1][1]['VmRSS'] - taken[0][1]['VmRSS']) / 1024:+.2f} MiB, "
          f"heap {(taken[1][2]['heap_bytes'] - taken[0][2]['heap_bytes']) / 1048576:+.2f} MiB")
PY
kill $HOUR
