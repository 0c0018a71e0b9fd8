#!/usr/bin/env python3
"""The posmini Python client (clients/python) against the real daemon in test mode.

    POSMINID=/path/to/posminid python3 -m unittest test_posmini_client

Run by the Swift suite (SimulateTests) with the package pip-installed in a virtual environment.
Every wait is bounded by a count of messages or by a timeout that only a failure reaches.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

import posmini
from posmini import Cancelled, Card, Client, Removed, SaleError, TooLate

POSMINID = os.environ.get("POSMINID", "posminid")


class Daemon:
    """posminid --test-key --simulate in a folder of its own."""

    def __init__(self, directory, manual=False):
        self.directory = directory
        self.socket = os.path.join(directory, "posmini.sock")
        self.process = None
        self.manual = manual

    def start(self):
        arguments = [POSMINID, "--test-key", "--simulate-manual" if self.manual else "--simulate",
                     "--socket", self.socket, "--state-directory", self.directory]
        self.log = open(os.path.join(self.directory, "posminid.log"), "ab")
        self.process = subprocess.Popen(arguments, stdout=self.log, stderr=self.log)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)
        self.log.close()


class ClientTests(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="posmini-py-")
        self.daemons = []

    def tearDown(self):
        for daemon in self.daemons:
            daemon.stop(signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)

    def daemon(self, manual=False):
        d = Daemon(self.directory, manual).start()
        self.daemons.append(d)
        return d

    def test_sale_returns_the_card(self):
        d = self.daemon()
        with Client(d.socket) as client:
            self.assertEqual(client.version["proto_minor"], 4)
            self.assertIn("request_id", client.version["capabilities"])
            self.assertEqual([r["id"] for r in client.readers], ["simulator"])
            prompts = []
            result = client.sale("order-1", timeout=30, on_prompt=lambda *p: prompts.append(p))
            self.assertIsInstance(result, Card, result)
            self.assertEqual((result.reference, result.masked_pan, result.iin), ("order-1", "411111******1111", "41111111"))
            self.assertTrue(result.test_key)
            self.assertEqual(result.encrypted["scheme"], "aes128-dukpt")
            self.assertEqual(prompts, [])
            second = client.sale("order-2", timeout=30)
            self.assertEqual(second.masked_pan, "555555******4444")

    def test_failed_swipe_prompts_and_the_sale_goes_on(self):
        d = self.daemon(manual=True)
        with Client(d.socket) as client:
            client.arm("order-3", timeout=60)
            self.assertEqual(client.simulate("swipe", "partial")["card"], "partial")
            self.assertEqual(client.simulate("swipe", "amex")["card"], "amex")
            prompts = []
            result = client.outcome("order-3", on_prompt=lambda reason, advice: prompts.append((reason, advice)), wait=30)
            self.assertEqual(prompts, [("partialSwipe", posmini.ADVICE["partialSwipe"])])
            self.assertIsInstance(result, Card)
            self.assertEqual(result.iin, "378282")

    def test_cancel_after_the_card_is_too_late(self):
        d = self.daemon(manual=True)
        with Client(d.socket) as client, Client(d.socket) as watcher:
            watching = watcher.watch(reconnect=False)
            self.assertEqual(next(watching)["id"], "simulator")
            client.arm("order-4", timeout=60)
            client.simulate("swipe", "visa")
            # The card has left the daemon once the watcher hears the swipe was delivered.
            for event in watching:
                if event.get("class") == "SWIPE":
                    self.assertTrue(event["delivered"])
                    break
            self.assertEqual(client.cancel(), [TooLate("order-4", "simulator")])
            # The card itself is still there for the app to void.
            card = client.outcome("order-4", wait=10)
            self.assertIsInstance(card, Card)
            # Nothing left to cancel.
            self.assertEqual(client.cancel(), [])
            client.arm("order-5", timeout=60)
            self.assertEqual(client.cancel("simulator"), [Cancelled("order-5", "simulator", "client")])

    def test_removed_and_refused(self):
        d = self.daemon(manual=True)
        with Client(d.socket) as client:
            client.arm("order-6", timeout=60)
            client.simulate("remove")
            self.assertIsInstance(client.outcome("order-6", wait=10), Removed)
            refused = client.sale("order-7", timeout=5)
            self.assertEqual((type(refused), refused.code), (SaleError, "no_reader"))
            client.simulate("insert")
            client.simulate("exhaust_key")
            self.assertEqual(client.sale("order-8", timeout=5).code, "key_exhausted")

    def test_daemon_restart_in_the_middle_of_a_sale_and_reconnect(self):
        d = self.daemon(manual=True)
        client = Client(d.socket, connect_wait=15)
        client.arm("order-9", timeout=60)
        d.stop(signal.SIGTERM)
        self.assertEqual(client.outcome("order-9", wait=15), Cancelled("order-9", "simulator", "shutdown"))
        # Killed outright: the sale ends as disconnected.
        d2 = self.daemon(manual=True)
        client.arm("order-10", timeout=60)
        d2.stop(signal.SIGKILL)
        lost = client.outcome("order-10", wait=15)
        self.assertEqual((type(lost), lost.code), (SaleError, "disconnected"))
        # The next sale connects to the new daemon by itself.
        self.daemon()
        result = client.sale("order-11", timeout=30)
        self.assertIsInstance(result, Card, result)
        client.close()

    def test_watch_reconnects(self):
        d = self.daemon(manual=True)
        watcher = Client(d.socket, connect_wait=15)
        events = watcher.watch()
        self.assertEqual(next(events)["id"], "simulator")
        d.stop(signal.SIGTERM)
        self.daemon(manual=True)
        # After the restart the reader is announced again, on the new connection.
        self.assertEqual(next(events)["id"], "simulator")
        with Client(self.daemons[-1].socket) as client:
            client.simulate("swipe", "partial")
        for event in events:
            if event.get("class") == "SWIPE_IGNORED":
                self.assertFalse(event["read"])
                break
        watcher.close()


if __name__ == "__main__":
    unittest.main()
