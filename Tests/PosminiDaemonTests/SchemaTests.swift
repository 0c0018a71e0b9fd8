import PosminiProtocol
import Testing
@testable import PosminiDaemon
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// docs/schema against what the daemon sends and takes. `make test` also checks every line
/// every process test's daemon sent (POSMINID_TEST_MESSAGE_LOG) and every hub test's message.
@Suite("docs/schema: JSON Schema of every message and request")
struct SchemaTests: CommandTesting {
    /// Runs Tests/Harness/check_messages.py on `lines`; its exit status and what it printed.
    func check(_ lines: [String], schema: String, key: String = "class") throws -> (status: Int32, output: String) {
        let directory = try temporaryDirectory()
        write(Array(lines.map { $0 + "\n" }.joined().utf8), to: directory + "/lines.jsonl")
        let out = directory + "/out"
        let status = system("python3 \(shellQuoted(packageRoot + "/Tests/Harness/check_messages.py")) \(shellQuoted(packageRoot + "/docs/schema/" + schema)) --key \(key) \(shellQuoted(directory + "/lines.jsonl")) >\(shellQuoted(out)) 2>&1")
        return ((status >> 8) & 0xFF, readText(out))
    }

    /// A hub session that sends every message class but RELEASED and SIMULATED.
    func session() async -> [String] {
        let hub = ReaderHub(clearNonPayment: true)
        await hub.readerAppeared(id: "r1", name: "reader")
        let pos = RecordingClient(1), watcher = RecordingClient(2)
        var lines = await hub.connect(pos).map { $0.json.text }
        _ = await hub.connect(watcher)
        var replies: [Reply] = []
        replies += await hub.handle(.watch(true), from: 2)
        replies += await hub.handle(.bind("r1"), from: 1)
        replies += await hub.handle(.arm(reader: "r1", timeout: 30, reference: "A-1"), from: 1)
        replies += await hub.handle(.arm(reader: "r1", timeout: 12.5, reference: "A-2"), from: 1)
        await hub.swipe(decodedSwipe(cut: true), reader: "r1")
        await hub.swipe(decodedSwipe(), reader: "r1")
        replies += await hub.handle(.cancel(reader: "r1"), from: 1)
        await hub.swipe(decodedSwipe(), reader: "r1")
        replies += await hub.handle(.arm(reader: nil, timeout: nil, reference: nil), from: 1)
        replies += await hub.handle(.cancel(reader: nil), from: 1)
        replies += await hub.handle(.arm(reader: "r1", timeout: 30, reference: "loyalty"), from: 1)
        await hub.swipe(decodedSwipe(";8800123456:0001?"), reader: "r1")
        replies += await hub.handle(.arm(reader: "r1", timeout: 30, reference: nil), from: 1)
        await hub.readerRemoved(id: "r1")
        await hub.readerAppeared(id: "r1", name: "reader")
        replies += await hub.handle(.arm(reader: "r1", timeout: 0.01, reference: "T"), from: 1)
        for _ in 0..<500 where !pos.classes.contains("TIMEOUT") { try? await Task.sleep(for: .milliseconds(10)) }
        replies += await hub.handle(.unbind("r1"), from: 1)
        replies += await hub.handle(.status, from: 1)
        replies += await hub.handle(.metrics, from: 1)
        replies += await hub.handle(.arm(reader: "r9", timeout: nil, reference: nil), from: 1)
        lines += replies.map { $0.json(id: "q").text }
        lines += (pos.received + watcher.received).map(\.json.text)
        return lines
    }

    @Test("every message a hub session sends is valid under docs/schema/messages.schema.json, and the session shows all but RELEASED and SIMULATED (a hub test has no device and no simulator)")
    func hubMessages() async throws {
        let lines = await session()
        let (status, output) = try check(lines, schema: "messages.schema.json")
        #expect(status == 0, "\(output)")
        #expect(output.contains("defined but not seen: RELEASED, SIMULATED\n"), "\(output)")
    }

    @Test("the schema refuses what the protocol does not allow, naming the field", arguments: [
        (#"{"class":"ARMED","timeout_s":30}"#, "'reader' is a required property"),
        (#"{"class":"ARMED","reader":"r","timeout_s":30,"queue":1}"#, "'queue' was unexpected"),
        (#"{"class":"CANCELLED","reader":"r","reason":"boss"}"#, "reason"),
        (#"{"class":"CARD","reader":"r","card_type":"payment","expiry":"2813","tracks":[{"status":"ok","corrected":0}],"quality":{"snr_db":30}}"#, "expiry"),
        (#"{"class":"CARD","reader":"r","card_type":"payment","iin":"4111111","tracks":[{"status":"ok","corrected":0}],"quality":{"snr_db":30}}"#, "iin"),
        (#"{"class":"SWIPE_FAILED","reader":"r","reason":"tooFast","quality":{"snr_db":30,"direction":"forward"}}"#, "quality"),
        (#"{"class":"ERROR","code":"reader_busy","message":"m","id":"\#(String(repeating: "i", count: 65))"}"#, "id"),
        (#"{"class":"VERSION","proto_major":2,"proto_minor":0,"release":"x","capabilities":[]}"#, "proto_major"),
        (#"{"class":"GOSSIP"}"#, "not in the schema"),
    ])
    func refused(line: String, words: String) throws {
        let (status, output) = try check([line], schema: "messages.schema.json")
        #expect(status == 1 && output.contains(words), "\(output)")
    }

    @Test("requests: what Request.parse takes the request schema takes, and what it refuses the schema refuses", arguments: [
        (#"{"cmd":"arm","reader":"r1","timeout_s":12.5,"reference":"A","id":"q1"}"#, true),
        (#"{"cmd":"cancel","reader":"r1"}"#, true),
        (#"{"cmd":"watch"}"#, true),
        (#"{"cmd":"release","reader":"r1","seconds":0}"#, true),
        (#"{"cmd":"status","id":"x"}"#, true),
        (#"{"cmd":"simulate","action":"swipe","card":"visa"}"#, true),
        (#"{"cmd":"simulate","action":"exhaust_key"}"#, true),
        (#"{"cmd":"simulate","action":"remove","card":"visa"}"#, false),
        (#"{"cmd":"simulate","action":"fly"}"#, false),
        (#"{"cmd":"arm","timeout_s":0}"#, false),
        (#"{"cmd":"arm","timeout_s":121}"#, false),
        (#"{"cmd":"arm","colour":"red"}"#, false),
        (#"{"cmd":"bind"}"#, false),
        (#"{"cmd":"release","reader":"r1","seconds":901}"#, false),
        (#"{"cmd":"status","id":7}"#, false),
        (#"{"cmd":"cancel","reader":"\#(String(repeating: "r", count: 257))"}"#, false),
    ])
    func requests(line: String, valid: Bool) throws {
        #expect(((try? Request.parse(Array(line.utf8))) != nil) == valid, "Request.parse on \(line)")
        let (status, output) = try check([line], schema: "requests.schema.json", key: "cmd")
        #expect((status == 0) == valid, "\(output)")
    }
}
