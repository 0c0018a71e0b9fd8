import PosminiClient
import PosminiProtocol
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// docs/transcript.jsonl: a complete session with the test-mode daemon, generated here and
    /// compared with the checked-in copy, so that the documented exchange cannot drift from the
    /// daemon.
    @Suite("the golden transcript (docs/transcript.jsonl)")
    struct TranscriptTests: CommandTesting {
        /// A line of the transcript: what a client sent or received.
        struct Line {
            var client: String
            var sent: Bool
            var message: JSONValue

            var json: JSONValue { ["client": .string(client), sent ? "send" : "receive": message] }
        }

        /// Values that change from run to run (the swipe's measured figures, the process's),
        /// replaced by the same placeholder on both sides of the comparison.
        static func normalised(_ value: JSONValue, key: String? = nil) -> JSONValue {
            if let key, ["snr_db", "speed_cm_s", "uptime_s", "rss_kib", "heap_bytes", "fds", "threads"].contains(key) {
                return "*"
            }
            switch value {
            case .object(let fields):
                var out: [String: JSONValue] = [:]
                for (k, v) in fields { out[k] = normalised(v, key: k) }
                return .object(out)
            case .array(let items): return .array(items.map { normalised($0) })
            default: return value
            }
        }

        /// Runs the session; every line, in order.
        func session() throws -> [Line] {
            let directory = try temporaryDirectory()
            let socket = directory + "/posmini.sock"
            let process = try Background(["--test-key", "--simulate-manual", "--socket", socket, "--state-directory", directory],
                                         environment: [:], directory: directory)
            let daemon = DaemonTests.Daemon(process: process, socket: socket, directory: directory)
            defer { daemon.stop() }
            var lines: [Line] = []
            let pos = try daemon.client(), watcher = try daemon.client()
            func receive(_ c: ControlClient, _ name: String, _ kind: String) throws {
                let m = try #require(try c.next(timeout: 20), "no \(kind) for \(name)")
                #expect(m["class"]?.stringValue == kind, "\(name) expected \(kind): \(m.text)")
                lines.append(Line(client: name, sent: false, message: m))
            }
            func send(_ c: ControlClient, _ name: String, _ request: Request, id: String? = nil) throws {
                let json = request.json(id: id)
                try c.send(json)
                lines.append(Line(client: name, sent: true, message: json))
            }
            try receive(pos, "pos", "VERSION")
            try receive(pos, "pos", "READERS")
            try receive(watcher, "watcher", "VERSION")
            try receive(watcher, "watcher", "READERS")
            try send(watcher, "watcher", .watch(true), id: "w1")
            try receive(watcher, "watcher", "WATCH")
            // A sale: a bad swipe, then the card; the cashier's cancel comes too late.
            try send(pos, "pos", .arm(reader: nil, timeout: 60, reference: "sale-1"), id: "a1")
            try receive(pos, "pos", "ARMED")
            try send(pos, "pos", .simulate(.swipe(card: "partial")), id: "s1")
            try receive(pos, "pos", "SIMULATED")
            try receive(pos, "pos", "SWIPE_FAILED")
            try receive(watcher, "watcher", "SWIPE")
            try send(pos, "pos", .simulate(.swipe(card: "visa")), id: "s2")
            try receive(pos, "pos", "SIMULATED")
            try receive(pos, "pos", "CARD")
            try receive(watcher, "watcher", "SWIPE")
            try send(pos, "pos", .cancel(reader: nil), id: "c1")
            try receive(pos, "pos", "ERROR")
            // Armed again before a swipe, then cancelled.
            try send(pos, "pos", .arm(reader: "simulator", timeout: 60, reference: "sale-2"), id: "a2")
            try receive(pos, "pos", "ARMED")
            try send(pos, "pos", .arm(reader: "simulator", timeout: 60, reference: "sale-3"), id: "a3")
            try receive(pos, "pos", "SUPERSEDED")
            try receive(pos, "pos", "ARMED")
            try send(pos, "pos", .cancel(reader: "simulator"), id: "c2")
            try receive(pos, "pos", "CANCELLED")
            // Nobody swipes.
            try send(pos, "pos", .arm(reader: nil, timeout: 0.5, reference: "sale-4"), id: "a4")
            try receive(pos, "pos", "ARMED")
            try receive(pos, "pos", "TIMEOUT")
            // The reader is pulled out during a sale, and plugged in again.
            try send(watcher, "watcher", .watch(false), id: "w2")
            try receive(watcher, "watcher", "WATCH")
            try send(pos, "pos", .arm(reader: nil, timeout: 60, reference: "sale-5"), id: "a5")
            try receive(pos, "pos", "ARMED")
            try send(pos, "pos", .simulate(.remove), id: "s3")
            try receive(pos, "pos", "READER_REMOVED")
            try receive(pos, "pos", "SIMULATED")
            try send(pos, "pos", .simulate(.insert), id: "s4")
            try receive(pos, "pos", "SIMULATED")
            // The key is used up while a sale waits: its card cannot be sent.
            try send(pos, "pos", .arm(reader: nil, timeout: 60, reference: "sale-6"), id: "a6")
            try receive(pos, "pos", "ARMED")
            try send(pos, "pos", .simulate(.exhaustKey), id: "s5")
            try receive(pos, "pos", "SIMULATED")
            try send(pos, "pos", .simulate(.swipe(card: "mc")), id: "s6")
            try receive(pos, "pos", "SIMULATED")
            try receive(pos, "pos", "ERROR")
            try send(pos, "pos", .status, id: "st")
            try receive(pos, "pos", "STATUS")
            return lines
        }

        @Test("a session with every ending, a SWIPE_FAILED, watch lines and a STATUS matches docs/transcript.jsonl (volatile figures aside); every message in it is valid under the schema")
        func transcript() throws {
            let lines = try session()
            let text = lines.map { $0.json.text + "\n" }.joined()
            // The fresh transcript, for `cp` when the change is meant.
            write(Array(text.utf8), to: packageRoot + "/.build/transcript.jsonl")
            let checkedIn = readText(packageRoot + "/docs/transcript.jsonl").split(separator: "\n").map(String.init)
            let fresh = text.split(separator: "\n").map(String.init)
            #expect(checkedIn.count == fresh.count, "docs/transcript.jsonl has \(checkedIn.count) lines, the session \(fresh.count): if the change is meant, cp .build/transcript.jsonl docs/transcript.jsonl")
            for (k, (old, new)) in zip(checkedIn, fresh).enumerated() {
                let a = try JSONValue.parse(Array(old.utf8)), b = try JSONValue.parse(Array(new.utf8))
                #expect(Self.normalised(a) == Self.normalised(b), "line \(k + 1) differs:\n  docs: \(old)\n  now:  \(new)\nif the change is meant: cp .build/transcript.jsonl docs/transcript.jsonl")
            }
            let received = lines.filter { !$0.sent }.map(\.message.text)
            let classes = Set(lines.filter { !$0.sent }.compactMap { $0.message["class"]?.stringValue })
            #expect(classes.isSuperset(of: ["CARD", "TIMEOUT", "CANCELLED", "READER_REMOVED", "SUPERSEDED", "ERROR", "SWIPE_FAILED", "SWIPE", "STATUS"]))
            let (status, output) = try SchemaTests().check(received, schema: "messages.schema.json")
            #expect(status == 0, "\(output)")
            let (requestStatus, requestOutput) = try SchemaTests().check(lines.filter(\.sent).map(\.message.text), schema: "requests.schema.json", key: "cmd")
            #expect(requestStatus == 0, "\(requestOutput)")
        }
    }
}
