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
# start, descriptors are where they were, and the daemon's own threads are the same ones (the
# thread pool's workers, counted at their fewest over ten seconds, at most one per core). The
# sound server's client library is told not to share memory with it (enable-shm = no): its
# shared pool would otherwise count in the daemon's resident memory, and on a terminal capturing
# from hw: there is none. Takes SOAK_MINUTES + 4 minutes of wall time and little CPU. With
# SOAK_SMAPS=DIR, the daemon's mappings at both figures are saved there (smaps.start, smaps.end).
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

export PYTHONPATH="$(cd "$(dirname "$0")" && pwd)"
python3 - "$DIR" "$PID" "$MINUTES" <<'PY'
import os, subprocess, sys, time
from posmini_rig import Client, describe, in_background, pos_app, resident, settled_threads
directory, pid, minutes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_minute = 15
path = directory + "/posmini.sock"
admin = Client(path)
status = admin.status

def figures(label, tag):
    threads = settled_threads(pid)
    memory, m = resident(pid), status()
    if os.environ.get("SOAK_SMAPS"):      # the mappings, to see which one grew
        with open(f"{os.environ['SOAK_SMAPS']}/smaps.{tag}", "w") as out:
            out.write(open(f"/proc/{pid}/smaps").read())
    c = m["counters"]
    print(f"{label:<34} {describe(memory, m['process'])}  RssShmem {memory['RssShmem'] / 1024:3.1f}  "
          f"swipes {c['swipes']}, read {c['good_reads']}, gaps {c['audio_gaps']}\n"
          f"{'':<34} threads when idle: {len(threads)} ({', '.join(threads)})", flush=True)
    return memory, m, threads

# The POS app arms, and again after each card or timeout; the watcher counts swipe events.
cards, watched = [0], [0]
def watch():
    client = Client(path)
    client.send({"cmd": "watch", "enable": True})
    for message in client.messages():
        if message["class"] in ("SWIPE", "SWIPE_IGNORED", "SWIPE_FAILED"):
            watched[0] += 1
in_background(pos_app, path, False, cards)
in_background(watch)

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
before, first, threads_before = figures("after two warm-up minutes:", "start")
play(minutes)
time.sleep(35)
after, last, threads_after = figures(f"after {minutes} more minutes:", "end")
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
# The daemon's own threads are the same ones; Dispatch's root-queue workers (the "qos" ones) stay
# alive while work comes more often than their five idle seconds, one per core at most, plus the
# overcommit queue's.
own = lambda names: [n for n in names if "qos" not in n]
if last["process"]["fds"] != first["process"]["fds"] or own(threads_after) != own(threads_before) \
        or len(threads_after) - len(own(threads_after)) > (os.cpu_count() or 1) + 1:
    failures.append("descriptors or threads grew")
print("soak-live: " + ("; ".join(failures) if failures else "passed"))
sys.exit(1 if failures else 0)
PY
