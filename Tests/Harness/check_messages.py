#!/usr/bin/env python3
"""Validates posminid socket messages against docs/schema (JSON Schema draft 2020-12).

    check_messages.py SCHEMA PATH... [--key class|cmd] [--at-least N]

Each PATH is a .jsonl file or a folder of them (one JSON object per line). Every line is checked
against the schema's definition for its "class" (messages) or "cmd" (requests, --key cmd), so
that an error names the field that is wrong. Prints how many of each were seen and which the
schema defines that none showed; exits 1 when a line is invalid or fewer than N were checked.
Standard library and python3-jsonschema only.
"""
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    sys.exit("check_messages.py: python3-jsonschema is missing (apt-get install python3-jsonschema)")


def files(paths):
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".jsonl"):
                    yield os.path.join(path, name)
        else:
            yield path


def main(argv):
    key, at_least, args = "class", 1, []
    i = 0
    while i < len(argv):
        if argv[i] == "--key":
            key = argv[i + 1]
            i += 2
        elif argv[i] == "--at-least":
            at_least = int(argv[i + 1])
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) < 2:
        sys.exit(__doc__)
    with open(args[0], encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    defined = [entry["$ref"].rsplit("/", 1)[1] for entry in schema["oneOf"]]
    validators = {}
    for name in defined:
        one = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/" + name}
        validators[schema["$defs"][name]["properties"][key]["const"]] = jsonschema.Draft202012Validator(one)
    seen, bad, total = {}, 0, 0
    for path in files(args[1:]):
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                total += 1
                where = f"{path}:{number}"
                try:
                    message = json.loads(line)
                except ValueError as error:
                    print(f"{where}: not JSON ({error})")
                    bad += 1
                    continue
                name = message.get(key) if isinstance(message, dict) else None
                validator = validators.get(name)
                if validator is None:
                    print(f"{where}: {key} {name!r} is not in the schema")
                    bad += 1
                    continue
                seen[name] = seen.get(name, 0) + 1
                for error in sorted(validator.iter_errors(message), key=lambda e: list(e.absolute_path)):
                    field = "/".join(str(p) for p in error.absolute_path) or "(the message)"
                    print(f"{where}: {name}: {field}: {error.message[:300]}")
                    bad += 1
    counts = ", ".join(f"{name} {n}" for name, n in sorted(seen.items()))
    print(f"check_messages: {total} checked against {os.path.basename(args[0])}: {counts}")
    unseen = sorted(set(validators) - set(seen))
    if unseen:
        print(f"check_messages: defined but not seen: {', '.join(unseen)}")
    if bad:
        print(f"check_messages: {bad} problem(s)")
        return 1
    if total < at_least:
        print(f"check_messages: only {total} checked, expected at least {at_least}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
