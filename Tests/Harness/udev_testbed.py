#!/usr/bin/python3
"""A umockdev testbed driven line by line, for posminid's udev tests.

Run under `umockdev-wrapper /usr/bin/python3 udev_testbed.py`. The first line printed is the
testbed's root (give it to the program under test as UMOCKDEV_DIR, run it under
umockdev-wrapper too). Then one command per input line, each answered by one line: `ok …` or
`error …`.

  add NAME [@ATTR=VALUE]... [PROPERTY=VALUE]...   a `sound` device /sys/devices/NAME (add uevent)
  set SYSPATH PROPERTY VALUE                      a udev property
  uevent SYSPATH ACTION                           add, change, remove
  remove SYSPATH                                  the remove uevent, then the device goes
"""
import sys

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402


def main():
    testbed = UMockdev.Testbed.new()
    print(testbed.get_root_dir(), flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            command = words[0]
            if command == "add":
                attributes, properties = [], []
                for word in words[2:]:
                    key, value = word.split("=", 1)
                    if key.startswith("@"):
                        attributes += [key[1:], value]
                    else:
                        properties += [key, value]
                path = testbed.add_device("sound", words[1], None, attributes, properties)
                print("ok", path, flush=True)
            elif command == "set":
                testbed.set_property(words[1], words[2], words[3])
                print("ok", flush=True)
            elif command == "uevent":
                testbed.uevent(words[1], words[2])
                print("ok", flush=True)
            elif command == "remove":
                testbed.uevent(words[1], "remove")
                testbed.remove_device(words[1])
                print("ok", flush=True)
            else:
                print("error unknown command", command, flush=True)
        except Exception as exc:  # reported to the test, which fails with it
            print("error", exc, flush=True)


if __name__ == "__main__":
    main()
