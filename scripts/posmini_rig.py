"""What make memory and make soak-live share: a client of the daemon's socket, the POS app that
arms again after every card, and a process's resident memory as /proc reports it."""
import json
import os
import socket
import threading
import time


class Client:
    """One connection to the daemon, one JSON object per line each way."""

    def __init__(self, path):
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(path)
        self.stream = sock.makefile("rw")

    def send(self, request):
        self.stream.write(json.dumps(request) + "\n")
        self.stream.flush()

    def messages(self):
        for line in self.stream:
            yield json.loads(line)

    def status(self):
        """The next STATUS reply (events that come first are skipped)."""
        self.send({"cmd": "status"})
        for message in self.messages():
            if message["class"] == "STATUS":
                return message
        raise EOFError("the daemon closed the connection")


ARM = {"cmd": "arm", "timeout_s": 120}


def pos_app(path, until_removed=False, cards=None):
    """A POS app: arms, and arms again after each card or timeout, counting the cards in cards[0]
    as they come. Returns that count when the reader goes away (until_removed) or the daemon
    closes the connection."""
    cards = cards if cards is not None else [0]
    client = Client(path)
    client.send(ARM)
    for message in client.messages():
        if message["class"] in ("CARD", "TIMEOUT"):
            cards[0] += message["class"] == "CARD"
            client.send(ARM)
        elif until_removed and message["class"] == "READER_REMOVED":
            break
    return cards[0]


def in_background(target, *args):
    threading.Thread(target=target, args=args, daemon=True).start()


def resident(pid):
    """VmRSS and its parts, in KiB (/proc/PID/status)."""
    memory = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
            memory[key] = int(value.split()[0])
    return memory


def describe(memory, process):
    """One line of figures: resident memory, heap, threads and descriptors."""
    return (f"VmRSS {memory['VmRSS'] / 1024:5.1f} MiB  RssAnon {memory['RssAnon'] / 1024:4.1f}  "
            f"RssFile {memory['RssFile'] / 1024:4.1f}  heap {process['heap_bytes'] / 1048576:.2f} MiB  "
            f"threads {process['threads']}  fds {process['fds']}")


def settled_threads(pid, seconds=10):
    """The fewest threads the process had over a few seconds, and their names: the thread pools
    of Dispatch and Swift concurrency start workers under load and end them when idle, so a
    single count can catch one passing through."""
    fewest = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        names = []
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                names.append(open(f"/proc/{pid}/task/{task}/comm").read().strip())
            except FileNotFoundError:
                pass        # ended while being listed
        if fewest is None or len(names) < len(fewest):
            fewest = names
        time.sleep(0.2)
    return sorted(fewest)
