#!/usr/bin/env python3
"""A POS app's sale, with the posmini client library (clients/python: pip install ./clients/python).

    python3 pos_client.py [--socket /run/posmini.sock] [--timeout 60] [--reference ORDER]

Prints the masked card and the `encrypted` object the app forwards to its processor (only the
processor, holding the BDK, can read it). Exit status: 0 with a card, 1 otherwise.
"""
import argparse
import json

from posmini import Card, Client

options = argparse.ArgumentParser(description="Sell with posminid: arm, swipe, print the masked card.")
options.add_argument("--socket", default="/run/posmini.sock")
options.add_argument("--timeout", type=float, default=60)
options.add_argument("--reference", default="order-1")
args = options.parse_args()
with Client(args.socket) as client:
    result = client.sale(args.reference, args.timeout, on_prompt=lambda reason, advice: print(f"swipe failed ({reason}): {advice}"))
if isinstance(result, Card):
    print("card:", result.card_type, result.masked_pan, "expires", result.expiry, "(test key)" if result.test_key else "")
    print("encrypted:", json.dumps(result.encrypted, sort_keys=True, separators=(",", ":")))
else:
    print(result)
raise SystemExit(0 if isinstance(result, Card) else 1)
