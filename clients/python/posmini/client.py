"""A client of posminid's socket (docs/PROTOCOL.md), Python's standard library only.

    from posmini import Client, Card

    with Client("/run/posmini.sock") as client:
        result = client.sale("order-1042", timeout=60, on_prompt=print)
        if isinstance(result, Card):
            forward_to_processor(result.encrypted)

Requests carry ids and wait for their own reply; events that arrive meanwhile are kept, in
order, for `sale()` and `watch()`. A connection that breaks is opened again by the next call.
"""
import errno
import itertools
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional

DEFAULT_SOCKET = "/run/posmini.sock"

# What a person can do about each SWIPE_FAILED reason (docs/PROTOCOL.md); an unknown reason is
# "swipe again".
ADVICE = {
    "tooFast": "swipe more slowly",
    "tooSlow": "swipe in one steady movement, a little faster",
    "unevenSpeed": "swipe at an even speed",
    "partialSwipe": "swipe the whole card through the reader",
    "weakSignal": "keep the stripe against the reader's head as you swipe",
    "clipped": "the reader's input is too loud: ask a technician to run posminid --diagnose",
    "noisy": "move the reader away from power supplies and swipe again",
    "notAMagstripe": "this is not a magnetic-stripe card, or it is inserted the wrong way",
}


class PosminiError(Exception):
    """The daemon could not be reached, or it answered in a way this client cannot read."""


class Refused(PosminiError):
    """A request the daemon refused (`ERROR`): `code` names why."""

    def __init__(self, code: str, message: str, reply: Optional[dict] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply or {}


# Outcomes of a sale: exactly one per arm.
@dataclass
class Card:
    """The card: masked fields only; `encrypted` goes to the processor unchanged."""
    reference: Optional[str]
    reader: str
    card_type: str
    masked_pan: Optional[str]
    last4: Optional[str]
    iin: Optional[str]
    expiry: Optional[str]
    name: Optional[str]
    service_code: Optional[str]
    encrypted: Optional[dict]
    test_key: bool
    message: dict = field(repr=False)


@dataclass
class Timeout:
    reference: Optional[str]
    reader: str


@dataclass
class Cancelled:
    reference: Optional[str]
    reader: str
    reason: str  # "client" or "shutdown"


@dataclass
class Removed:
    """The reader went away during the sale."""
    reference: Optional[str]
    reader: str
    message: Optional[str]


@dataclass
class SaleError:
    """The sale ended without a card for another reason: a refused arm (`reader_busy`,
    `key_exhausted`…), a card that could not be encrypted, a superseded arm, or the connection
    lost (`disconnected`: the daemon restarted; the sale did not happen)."""
    reference: Optional[str]
    code: str
    message: str


@dataclass
class TooLate:
    """A cancel that came after the card was sent: void or reverse that sale."""
    reference: Optional[str]
    reader: str


class Client:
    """One connection to posminid, opened on first use and again after it breaks.

    `connect_wait`: seconds to keep trying while the socket is missing or refuses (a daemon
    starting or restarting). `timeout`: seconds to wait for a request's reply.
    """

    def __init__(self, path: str = DEFAULT_SOCKET, connect_wait: float = 10.0, timeout: float = 10.0):
        self.path = path
        self.connect_wait = connect_wait
        self.timeout = timeout
        self.version: Optional[dict] = None
        self.readers: List[dict] = []
        self._sock: Optional[socket.socket] = None
        self._buffer = b""
        self._events: List[dict] = []
        self._ids = itertools.count(1)
        # The readers this connection armed (a cancel without a reader asks about each).
        self._armed: set = set()

    # Connection

    def __enter__(self) -> "Client":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Connects (trying again for `connect_wait` seconds) and reads the greeting."""
        self.close()
        deadline = time.monotonic() + self.connect_wait
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                break
            except OSError as error:
                sock.close()
                retry = error.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN)
                if not retry or time.monotonic() >= deadline:
                    raise PosminiError(f"cannot connect to {self.path}: {error.strerror}") from error
                time.sleep(0.05)
        # Events from an earlier connection stay: a card that came before the daemon went is
        # still the app's.
        self._sock = sock
        self._buffer = b""
        self._armed = set()
        first = self._read(self.timeout)
        if first.get("class") == "ERROR":
            self.close()
            raise Refused(first.get("code", ""), first.get("message", ""), first)
        if first.get("class") != "VERSION" or first.get("proto_major") != 1:
            self.close()
            raise PosminiError(f"not a posminid protocol 1 greeting: {first}")
        self.version = first
        readers = self._read(self.timeout)
        self.readers = readers.get("readers", [])

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def _ensure(self) -> None:
        if self._sock is None:
            self.connect()

    def _read(self, timeout: Optional[float]) -> dict:
        """The next message; PosminiError when the connection ends or `timeout` passes."""
        assert self._sock is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if remaining == 0.0:
                raise TimeoutError("no message from posminid in time")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no message from posminid in time") from None
            except OSError as error:
                self.close()
                raise PosminiError(f"connection to posminid lost: {error}") from error
            if not chunk:
                self.close()
                raise PosminiError("posminid closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line)
        except ValueError as error:
            raise PosminiError(f"posminid sent a line that is not JSON: {line[:200]!r}") from error

    def _send(self, request: dict) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall((json.dumps(request, separators=(",", ":")) + "\n").encode())
        except OSError as error:
            self.close()
            raise PosminiError(f"connection to posminid lost: {error}") from error

    # Requests

    def request(self, request: dict, timeout: Optional[float] = None) -> dict:
        """Sends `request` with a fresh id and returns its reply (the message that echoes the
        id). Events that come meanwhile are kept for `sale()` and `watch()`. An ERROR reply
        raises Refused."""
        rid = f"py-{next(self._ids)}"
        wait = self.timeout if timeout is None else timeout
        # A connection whose daemon went away (restarted) fails only when used: then the
        # request is sent again once on a new connection. It cannot have taken effect: a
        # daemon's arms and releases end with the connection that made them.
        for attempt in (1, 2):
            try:
                self._ensure()
                self._send(dict(request, id=rid))
                while True:
                    message = self._read(wait)
                    if message.get("id") == rid:
                        break
                    self._events.append(message)
                break
            except TimeoutError:
                raise
            except PosminiError:
                if attempt == 2:
                    raise
        if message.get("class") == "ERROR":
            raise Refused(message.get("code", ""), message.get("message", ""), message)
        return message

    def _next_event(self, timeout: Optional[float]) -> dict:
        if self._events:
            return self._events.pop(0)
        return self._read(timeout)

    def status(self) -> dict:
        return self.request({"cmd": "status"})

    def cancel(self, reader: Optional[str] = None) -> List[Any]:
        """Ends this client's arm on `reader`, or on every reader this connection armed: a
        Cancelled for each arm ended, a TooLate for a card already sent (void or reverse that
        sale). Nothing armed: an empty list."""
        results: List[Any] = []
        for one in ([reader] if reader is not None else sorted(self._armed)):
            try:
                reply = self.request({"cmd": "cancel", "reader": one})
                results.append(Cancelled(reply.get("reference"), reply["reader"], reply.get("reason", "client")))
            except Refused as refusal:
                if refusal.code == "too_late":
                    results.append(TooLate(refusal.reply.get("reference"), refusal.reply.get("reader", one)))
                elif refusal.code != "not_armed":
                    raise
        return results

    def simulate(self, action: str, card: Optional[str] = None) -> dict:
        """The test mode's reader (posminid --test-key --simulate): action is swipe, remove,
        insert or exhaust_key."""
        request: Dict[str, Any] = {"cmd": "simulate", "action": action}
        if card is not None:
            request["card"] = card
        return self.request(request)

    # A sale

    def arm(self, reference: Optional[str] = None, timeout: float = 60, reader: Optional[str] = None) -> dict:
        """Arms a reader; returns ARMED (its `timeout_s` is the time granted). Refused raises."""
        request: Dict[str, Any] = {"cmd": "arm", "timeout_s": timeout}
        if reference is not None:
            request["reference"] = reference
        if reader is not None:
            request["reader"] = reader
        armed = self.request(request)
        self._armed.add(armed["reader"])
        return armed

    def outcome(self, reference: Optional[str], on_prompt: Optional[Callable[[str, str], None]] = None,
                wait: Optional[float] = None):
        """Waits for the end of the armed sale `reference`: Card, Timeout, Cancelled, Removed or
        SaleError. SWIPE_FAILED calls `on_prompt(reason, advice)` and the sale goes on."""
        while True:
            try:
                message = self._next_event(wait)
            except TimeoutError:
                raise
            except PosminiError as error:
                return SaleError(reference, "disconnected", str(error))
            kind = message.get("class")
            if message.get("reference") != reference and kind in ("CARD", "TIMEOUT", "CANCELLED", "READER_REMOVED",
                                                                   "SUPERSEDED", "SWIPE_FAILED", "ERROR"):
                continue  # another sale's message
            if kind == "SWIPE_FAILED":
                if on_prompt is not None:
                    reason = message.get("reason", "unreadable")
                    on_prompt(reason, ADVICE.get(reason, "swipe again"))
            elif kind == "CARD":
                return Card(message.get("reference"), message["reader"], message["card_type"], message.get("masked_pan"),
                            message.get("last4"), message.get("iin"), message.get("expiry"), message.get("name"),
                            message.get("service_code"), message.get("encrypted"), bool(message.get("test_key")), message)
            elif kind == "TIMEOUT":
                return Timeout(message.get("reference"), message["reader"])
            elif kind == "CANCELLED":
                return Cancelled(message.get("reference"), message["reader"], message.get("reason", "client"))
            elif kind == "READER_REMOVED":
                return Removed(message.get("reference"), message["reader"], message.get("message"))
            elif kind == "SUPERSEDED":
                return SaleError(reference, "superseded", message.get("message", "armed again"))
            elif kind == "ERROR":
                return SaleError(reference, message.get("code", ""), message.get("message", ""))

    def sale(self, reference: str, timeout: float = 60, reader: Optional[str] = None,
             on_prompt: Optional[Callable[[str, str], None]] = None):
        """Arms a reader for `reference` and returns how the sale ended: Card, Timeout,
        Cancelled, Removed or SaleError (a refused arm too). Failed swipes call
        `on_prompt(reason, advice)`: tell the customer, and the reader stays armed."""
        try:
            armed = self.arm(reference, timeout, reader)
        except Refused as refusal:
            return SaleError(reference, refusal.code, refusal.message)
        except PosminiError as error:
            return SaleError(reference, "disconnected", str(error))
        # The daemon ends the arm by its timeout_s: wait a little longer than that.
        return self.outcome(reference, on_prompt, wait=float(armed.get("timeout_s", timeout)) + 5)

    # Watching

    def watch(self, reconnect: bool = True) -> Iterator[dict]:
        """Every READER and swipe event, as it comes (each reader's state first, on each
        connection: watching has begun when the first is handed out). Reconnects when the
        daemon restarts, unless `reconnect` is False."""
        while True:
            try:
                self._ensure()
                # Watching from before the first reader is handed out: nothing that happens
                # after it can be missed.
                self.request({"cmd": "watch", "enable": True})
                for reader in self.readers:
                    yield reader
                while True:
                    message = self._next_event(None)
                    if message.get("class") != "WATCH":
                        yield message
            except PosminiError:
                self.close()
                if not reconnect:
                    return
                time.sleep(0.1)
