#!/usr/bin/env python3
"""A POS app's use of posminid, with Python's standard library only.

Connects to the daemon's socket, arms the reader, waits for the swipe and prints the masked
card (and the `encrypted` object, which the POS app forwards to its payment processor; only the
processor, holding the base derivation key, can decrypt it). A bad read is reported and the
reader stays armed for another swipe.

    python3 pos_client.py [--socket /run/posmini.sock] [--timeout 60] [--reference ORDER]

Exit status: 0 with a card, 1 on timeout, cancellation, removal or error.
"""
import argparse
import json
import socket
import sys


def messages(sock):
    """The daemon's messages, one JSON object per line."""
    buffer = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line:
                yield json.loads(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", default="/run/posmini.sock")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--reader", help="reader id, when several are present")
    parser.add_argument("--reference", help="echoed back in every reply, e.g. the order number")
    args = parser.parse_args()

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(args.socket)
    except OSError as error:
        print(f"cannot connect to {args.socket}: {error}", file=sys.stderr)
        return 1
    stream = messages(sock)
    version = next(stream)
    if version.get("class") != "VERSION" or version.get("proto_major") != 1:
        print(f"unexpected greeting: {version}", file=sys.stderr)
        return 1
    readers = next(stream)
    print("readers:", ", ".join(r["id"] for r in readers.get("readers", [])) or "none")

    request = {"cmd": "arm", "timeout_s": args.timeout}
    if args.reader:
        request["reader"] = args.reader
    if args.reference:
        request["reference"] = args.reference
    sock.sendall((json.dumps(request) + "\n").encode())

    for message in stream:
        kind = message.get("class")
        if kind == "ARMED":
            print(f"armed {message['reader']} for {message['timeout_s']:.0f} s: swipe the card")
        elif kind == "SWIPE_FAILED":
            print(f"swipe failed ({message['reason']}): swipe again")
        elif kind == "CARD":
            print("card:", message["card_type"], message.get("masked_pan", ""), "expires", message.get("expiry", "-"))
            if "encrypted" in message:
                print("encrypted:", json.dumps(message["encrypted"], sort_keys=True))
            return 0
        elif kind in ("TIMEOUT", "CANCELLED", "READER_REMOVED", "SUPERSEDED"):
            print(kind.lower().replace("_", " "))
            return 1
        elif kind == "ERROR":
            print(f"error {message['code']}: {message['message']}", file=sys.stderr)
            return 1
    print("the daemon closed the connection", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
