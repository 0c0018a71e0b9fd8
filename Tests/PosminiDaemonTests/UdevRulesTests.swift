import Testing
import TestSupport
import ReaderIO

/// A udev rules checker (Debian 12's udevadm has no `verify`): every rule is comma-separated
/// `KEY[{attribute}] operator "value"` with keys udev knows and operators each key takes; every
/// GOTO has its LABEL.
struct UdevRules {
    struct Term: Hashable {
        var key: String
        var attribute: String?
        var op: String
        var value: String
    }

    struct Problem: Error, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    static let matchOnly: Set<String> = ["ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
                                         "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST"]
    static let both: Set<String> = ["ATTR", "ENV", "TAG", "NAME", "SYMLINK", "SYSCTL"]
    static let assignOnly: Set<String> = ["OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS"]
    static let needsAttribute: Set<String> = ["ATTR", "ATTRS", "ENV", "SYSCTL", "CONST", "SECLABEL"]
    static let matchOperators: Set<String> = ["==", "!="]
    static let assignOperators: Set<String> = ["=", "+=", "-=", ":="]

    /// The rules, each with its line number; commented-out rules (`#KEY…`) when `examples`.
    static func rules(_ text: String, examples: Bool = false) -> [(Int, String)] {
        var out: [(Int, String)] = []
        for (k, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = raw.drop { $0 == " " || $0 == "\t" }
            if line.hasPrefix("#") {
                guard examples, let first = line.dropFirst().first, first.isUppercase else { continue }
                line = line.dropFirst()
            }
            if !line.isEmpty { out.append((k + 1, String(line))) }
        }
        return out
    }

    static func parse(_ rule: String, line: Int) throws(Problem) -> [Term] {
        var terms: [Term] = []
        var rest = Substring(rule)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            let keyEnd = rest.firstIndex { !($0.isUppercase || $0 == "_") } ?? rest.endIndex
            let key = String(rest[..<keyEnd])
            guard !key.isEmpty else { throw Problem(line: line, message: "expected a key at '\(rest)'") }
            rest = rest[keyEnd...]
            var attribute: String?
            if rest.first == "{" {
                guard let close = rest.firstIndex(of: "}") else { throw Problem(line: line, message: "unclosed { after \(key)") }
                attribute = String(rest[rest.index(after: rest.startIndex)..<close])
                rest = rest[rest.index(after: close)...]
            }
            rest = rest.drop { $0 == " " }
            let op = ["==", "!=", "+=", "-=", ":=", "="].first { rest.hasPrefix($0) }
            guard let op else { throw Problem(line: line, message: "\(key): expected an operator at '\(rest)'") }
            rest = rest.dropFirst(op.count).drop { $0 == " " }
            guard rest.first == "\"", let close = rest.dropFirst().firstIndex(of: "\"") else {
                throw Problem(line: line, message: "\(key): the value must be in double quotes")
            }
            let value = String(rest[rest.index(after: rest.startIndex)..<close])
            rest = rest[rest.index(after: close)...]
            guard matchOnly.contains(key) || both.contains(key) || assignOnly.contains(key) else {
                throw Problem(line: line, message: "unknown key \(key)")
            }
            if matchOperators.contains(op) && assignOnly.contains(key) {
                throw Problem(line: line, message: "\(key) is assigned, not matched (\(op))")
            }
            if assignOperators.contains(op) && matchOnly.contains(key) {
                throw Problem(line: line, message: "\(key) is matched, not assigned (\(op))")
            }
            if needsAttribute.contains(key) && (attribute ?? "").isEmpty {
                throw Problem(line: line, message: "\(key) needs {name}")
            }
            terms.append(Term(key: key, attribute: attribute, op: op, value: value))
            rest = rest.drop { $0 == " " }
            if rest.isEmpty { return terms }
            guard rest.first == "," else { throw Problem(line: line, message: "expected ',' at '\(rest)'") }
            rest = rest.dropFirst()
        }
    }

    /// Every rule parsed; GOTO targets exist.
    static func check(_ text: String, examples: Bool = false) throws(Problem) -> [[Term]] {
        var parsed: [[Term]] = []
        for (line, rule) in rules(text, examples: examples) { parsed.append(try parse(rule, line: line)) }
        let labels = Set(parsed.flatMap { $0 }.filter { $0.key == "LABEL" }.map(\.value))
        for term in parsed.flatMap({ $0 }) where term.key == "GOTO" && !labels.contains(term.value) {
            throw Problem(line: 0, message: "GOTO \"\(term.value)\" has no LABEL")
        }
        return parsed
    }
}

@Suite("udev rules")
struct UdevRulesTests {
    static let name = "72-posmini.rules"
    let text = readText(packageRoot + "/udev-rules/" + UdevRulesTests.name)

    @Test("72-posmini.rules: every rule parses, the example too; GOTOs land")
    func parses() throws {
        #expect(!text.isEmpty)
        let rules = try UdevRules.check(text)
        #expect(rules.count >= 6)
        let withExamples = try UdevRules.check(text, examples: true)
        #expect(withExamples.count == rules.count + 1, "the commented example is a rule too")
    }

    @Test("only adapters listed by USB vendor and product are marked; the marked card is set apart for posminid")
    func narrow() throws {
        let rules = try UdevRules.check(text, examples: true)
        let marking = rules.filter { $0.contains { $0.key == "ENV" && $0.attribute == "POSMINI_READER" && $0.op == "=" } }
        #expect(!marking.isEmpty)
        for rule in marking {
            let vendor = rule.first { $0.key == "ATTRS" && $0.attribute == "idVendor" && $0.op == "==" }
            let product = rule.first { $0.key == "ATTRS" && $0.attribute == "idProduct" && $0.op == "==" }
            #expect(vendor?.value.count == 4 && product?.value.count == 4, "a mark without exact USB ids: \(rule)")
            #expect(!(vendor?.value.contains("*") ?? true) && !(product?.value.contains("*") ?? true))
            #expect(rule.contains { $0.key == "SUBSYSTEM" && $0.op == "==" && $0.value == "sound" })
        }
        let active = try UdevRules.check(text)
        #expect(active.allSatisfy { rule in !rule.contains { $0.key == "ENV" && $0.attribute == "POSMINI_READER" && $0.op == "=" } },
                "no adapter is marked until one is listed")
        let assignments = active.flatMap { $0 }.filter { UdevRules.assignOperators.contains($0.op) }
        for (key, attribute, value) in [("ENV", "ACP_IGNORE", "1"), ("ENV", "PULSE_IGNORE", "1"), ("GROUP", nil, "posminid"),
                                        ("TAG", nil, "systemd"), ("ENV", "SYSTEMD_WANTS", "posminid.service")] {
            #expect(assignments.contains { $0.key == key && $0.attribute == attribute && $0.value == value }, "\(key) \(value)")
        }
        // Everything that sets a card apart comes after the check that it is marked.
        let lines = text.split(separator: "\n").map(String.init)
        let gate = try #require(lines.firstIndex { $0.hasPrefix("ENV{POSMINI_READER}!=\"1\"") })
        let ignore = try #require(lines.firstIndex { $0.hasPrefix("ENV{PULSE_IGNORE}") })
        #expect(gate < ignore)
    }

    @Test("a marked reader is no seat user's: its nodes in posminid's group, never audio, and its uaccess tag removed in a file ordered after 70-uaccess and before 73-seat-late")
    func noSeatAccess() throws {
        // udev orders rules files by name; the seat ACLs are applied from the tag in 73.
        let number = try #require(Int(UdevRulesTests.name.prefix { $0.isNumber }))
        #expect(number > 70 && number < 73, "\(UdevRulesTests.name) must sort between 70-uaccess.rules and 73-seat-late.rules")
        let files = FileBytes.entries(ofDirectory: packageRoot + "/udev-rules").filter { $0.hasSuffix(".rules") }
        #expect(files == [UdevRulesTests.name], "one rules file, so the adapter list lives in one place: \(files)")
        let active = try UdevRules.check(text)
        let terms = active.flatMap { $0 }
        #expect(terms.contains { $0.key == "TAG" && $0.op == "-=" && $0.value == "uaccess" })
        #expect(!terms.contains { $0.key == "GROUP" && $0.value == "audio" })
        #expect(!terms.contains { $0.key == "TAG" && $0.op != "-=" && $0.value == "uaccess" })
        // Only marked readers lose the tag: the removal comes after the gate.
        let lines = text.split(separator: "\n").map(String.init)
        let gate = try #require(lines.firstIndex { $0.hasPrefix("ENV{POSMINI_READER}!=\"1\"") })
        let untag = try #require(lines.firstIndex { $0.hasPrefix("TAG-=\"uaccess\"") })
        #expect(gate < untag)
        // The group the daemon runs in.
        let unit = readText(packageRoot + "/systemd/posminid.service")
        #expect(unit.contains("\nGroup=posminid\n"))
    }

    @Test("the checker refuses what udev would: unquoted value, unknown key, a matched assignment key, a missing comma, a GOTO without LABEL")
    func refuses() {
        for bad in ["SUBSYSTEM==sound", "FOO==\"x\"", "GROUP==\"audio\"", "KERNEL=\"card*\"",
                    "SUBSYSTEM==\"sound\" KERNEL==\"card*\"", "ENV=\"1\"", "GOTO=\"nowhere\""] {
            #expect(throws: UdevRules.Problem.self, "\(bad)") { _ = try UdevRules.check(bad) }
        }
        #expect(throws: Never.self) { _ = try UdevRules.check("SUBSYSTEM==\"sound\", ENV{X}=\"1\", GOTO=\"e\"\nLABEL=\"e\"") }
    }
}
