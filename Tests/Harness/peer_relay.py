#!/usr/bin/python3
"""A client of posminid's socket under another uid, for the role tests.

Run it as the user to test (setpriv --reuid=N ...): it connects to the daemon's socket, so the
daemon's SO_PEERCRED/SO_PEERGROUPS see that user, then listens on a socket of its own and relays
the first client that connects there, both ways, until either side hangs up. The test suite,
which runs as root, talks through it with its ordinary client.

usage: peer_relay.py DAEMON_SOCKET RELAY_SOCKET   (prints "ready" once both are set up)
"""
import os
import selectors
import socket
import sys


def main() -> int:
    daemon_path, relay_path = sys.argv[1], sys.argv[2]
    daemon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    daemon.connect(daemon_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(relay_path)
    listener.listen(1)
    print("ready", flush=True)
    local, _ = listener.accept()
    listener.close()
    os.unlink(relay_path)
    selector = selectors.DefaultSelector()
    selector.register(daemon, selectors.EVENT_READ, local)
    selector.register(local, selectors.EVENT_READ, daemon)
    while True:
        for key, _ in selector.select():
            data = key.fileobj.recv(65536)
            if not data:
                return 0
            key.data.sendall(data)


if __name__ == "__main__":
    sys.exit(main())
