#!/bin/sh
# make soak-live: the release daemon capturing in real time, as on a terminal, from a PulseAudio
# null sink (a paced virtual sound card, through alsa-lib's pulse device), while SOAK_MINUTES
# minutes of swipes (one every 4 s over a noise bed) are played into it, with a watcher and a POS
# app that arms again after every card.
#
# One process from start to end: its figures are taken after two warm-up minutes of swipes
# (every code path the soak takes has run, the break between two plays included; the start-up
# pages have been handed back and malloc trimmed), and again after the soak, each 35 s after the
# audio stops. Passes when every swipe is read and seen, resident memory is within 1 MiB of the
# start, and descriptors and threads are where they were. The sound server's client library is
# told not to share memory with it (enable-shm = no): its shared pool would otherwise count in
# the daemon's resident memory, and on a terminal capturing from hw: there is none. Takes
# SOAK_MINUTES + 4 minutes of wall time and little CPU.
set -eu
BIN=${BIN:-.build/release}
MINUTES=${SOAK_MINUTES:-60}
DIR=$(mktemp -d /tmp/posmini-soak-XXXXXX)
mkdir -m 700 "$DIR/runtime"
export XDG_RUNTIME_DIR="$DIR/runtime" HOME="$DIR" PULSE_SERVER="unix:$DIR/runtime/pulse/native"
printf 'enable-shm = no\nenable-memfd = no\n' >"$DIR/client.conf"
export PULSE_CLIENTCONFIG="$DIR/client.conf"
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    pulseaudio --kill >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

pulseaudio -n --daemonize=yes --exit-idle-time=-1 --system=no --log-target="file:$DIR/pulse.log" \
    -L 'module-null-sink sink_name=reader rate=44100 channels=1' -L module-native-protocol-unix
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.05; done
"$BIN/posmini-bench" --soak-wav "$DIR/minute.wav"
PULSE_SOURCE=reader.monitor "$BIN/posminid" --device pulse --test-key --socket "$DIR/posmini.sock" \
    --state-directory "$DIR/state" 2>"$DIR/daemon.log" &
PID=$!
for _ in $(seq 200); do [ -S "$DIR/posmini.sock" ] && break; sleep 0.05; done

python3 - "$DIR" "$PID" "$MINUTES" <<'PY'
import json, socket, subprocess, sys, threading, time
directory, pid, minutes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_minute = 15

def connect():
    s = socket.socket(socket.AF_UNIX)
    s.connect(directory + "/posmini.sock")
    return s.makefile("rw")

admin = connect()
def status():
    admin.write('{"cmd":"status"}\n'); admin.flush()
    for line in admin:
        m = json.loads(line)
        if m["class"] == "STATUS":
            return m

def figures(label):
    memory = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            memory[key] = int(value.split()[0])
    m = status()
    p, c = m["process"], m["counters"]
    print(f"{label:<34} VmRSS {memory['VmRSS'] / 1024:5.1f} MiB  RssAnon {memory['RssAnon'] / 1024:4.1f}  "
          f"RssFile {memory['RssFile'] / 1024:4.1f}  RssShmem {memory['RssShmem'] / 1024:3.1f}  heap {p['heap_bytes'] / 1048576:.2f} MiB  threads {p['threads']}  "
          f"fds {p['fds']}  swipes {c['swipes']}, read {c['good_reads']}, gaps {c['audio_gaps']}", flush=True)
    return memory, m

# The POS app: arms, and again after each card or timeout. The watcher counts swipe events.
cards, watched = [0], [0]
def pos():
    f = connect()
    f.write('{"cmd":"arm","timeout_s":120}\n'); f.flush()
    for line in f:
        m = json.loads(line)
        if m["class"] in ("CARD", "TIMEOUT"):
            cards[0] += m["class"] == "CARD"
            f.write('{"cmd":"arm","timeout_s":120}\n'); f.flush()
def watch():
    f = connect()
    f.write('{"cmd":"watch","enable":true}\n'); f.flush()
    for line in f:
        if json.loads(line)["class"] in ("SWIPE", "SWIPE_IGNORED", "SWIPE_FAILED"):
            watched[0] += 1
for target in (pos, watch):
    threading.Thread(target=target, daemon=True).start()

for _ in range(300):
    readers = status()["readers"]
    if readers and readers[0].get("capturing"):
        break
    time.sleep(0.1)
else:
    sys.exit("the daemon never captured from the pulse device")

def play(times):
    for _ in range(times):
        subprocess.run(["paplay", "--device=reader", directory + "/minute.wav"], check=True)

started = time.monotonic()
play(2)
status()              # the status path has run before the first figures too
time.sleep(35)
before, first = figures("after two warm-up minutes:")
play(minutes)
time.sleep(35)
after, last = figures(f"after {minutes} more minutes:")
expected = per_minute * (minutes + 2)
c = last["counters"]
growth = (after["VmRSS"] - before["VmRSS"]) / 1024
print(f"{minutes + 2} minutes of audio in {(time.monotonic() - started) / 60:.1f} min of wall time: {c['swipes']} swipes "
      f"of {expected}, {c['good_reads']} read, {cards[0]} cards, {watched[0]} swipes seen by the watcher; "
      f"resident memory {growth:+.2f} MiB, anonymous {(after['RssAnon'] - before['RssAnon']) / 1024:+.2f} MiB")
failures = []
if c["swipes"] != expected or c["good_reads"] != expected or watched[0] != expected:
    failures.append("not every swipe was read and seen")
if abs(growth) > 1:
    failures.append("resident memory moved by more than 1 MiB")
if last["process"]["fds"] != first["process"]["fds"] or last["process"]["threads"] > first["process"]["threads"]:
    failures.append("descriptors or threads grew")
print("soak-live: " + ("; ".join(failures) if failures else "passed"))
sys.exit(1 if failures else 0)
PY
