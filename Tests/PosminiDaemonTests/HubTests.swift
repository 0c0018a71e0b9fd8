import PosminiProtocol
import Testing
import Synchronization
@testable import PosminiDaemon
@testable import PosminiDiagnose
import PosminiConfig
import ReaderIO
import ReaderPipeline
import SwipeDecoder
import SwipeSynth
import Magstripe
import TestSupport

/// A client that records what it is sent.
final class RecordingClient: HubClient, @unchecked Sendable {
    let clientID: Int
    private let box = Mutex<[Reply]>([])
    let peer: ClientPeer
    /// `uid` 1000 unless given: clients of one POS user.
    init(_ id: Int, uid: UInt32 = 1000, admin: Bool = false) {
        clientID = id
        peer = ClientPeer(uid: uid, admin: admin)
    }
    /// Kept as the JSON the socket would carry, after checking that it reads back as the same
    /// reply (every message the hub sends, in every hub test).
    func send(_ message: Reply) {
        let json = message.json
        #expect((try? Reply.parse(line: Array(json.text.utf8))) == message, "\(json.text)")
        hubMessageLog?.record(json.text + "\n")
        box.withLock { $0.append(message) }
    }
    var received: [Reply] { box.withLock { $0 } }
    var classes: [String] { received.compactMap { $0["class"]?.stringValue } }
    /// How many messages came, without copying them.
    var count: Int { box.withLock { $0.count } }
}

/// Under `make test` (POSMINID_TEST_MESSAGE_LOG), every message a hub test sends is kept for
/// the schema check, beside the daemons'.
let hubMessageLog: MessageLog? = MessageLog.open(testKey: true, name: "hub")

final class CallLog: @unchecked Sendable {
    private let box = Mutex<[String]>([])
    func add(_ s: String) { box.withLock { $0.append(s) } }
    var list: [String] { box.withLock { $0 } }
}

/// A hub with readers `r1` and `r2`, and clients 1 and 2 connected.
func twoReaderHub() async -> (ReaderHub, RecordingClient, RecordingClient) {
    let hub = ReaderHub()
    await hub.readerAppeared(id: "r1", name: "one")
    await hub.readerAppeared(id: "r2", name: "two")
    let a = RecordingClient(1), b = RecordingClient(2)
    _ = await hub.connect(a)
    _ = await hub.connect(b)
    return (hub, a, b)
}

/// A decoded swipe of a test card (or a failed one).
func decodedSwipe(_ text: String = ";4111111111111111=28121010000012345678?", format: TrackFormat = .track2, cut: Bool = false,
                  mask: MaskPolicy = .standard) -> Swipe {
    var audio = AudioPath(sampleRate: 44_100)
    audio.snr = 35
    audio.leadingSilence = 0.1
    audio.trailingSilence = 0.1
    var motion = Motion(speed: .constant(300))
    if cut { motion.travel = 0...0.5 }
    let rendered = SwipeSynthesizer.render(SwipeScenario(tracks: [try! StripeTrack(text: text, format: format)], motion: motion, audio: audio))
    var configuration = DecoderConfiguration()
    configuration.maskPolicy = mask
    let decoder = try! SwipeDecoder(sampleRate: 44_100, configuration: configuration)
    return (decoder.push(rendered.channels[0]) + decoder.finish())[0]
}

@Suite("Reader hub: the POS-app flow")
struct HubTests {
    @Test("connect greets with VERSION and READERS")
    func greeting() async {
        let hub = ReaderHub()
        await hub.readerAppeared(id: "r1", name: "USB reader")
        let greeting = await hub.connect(RecordingClient(1))
        #expect(greeting.map { $0["class"]?.stringValue } == ["VERSION", "READERS"])
        #expect(greeting[0]["proto_major"] == 1)
        #expect(greeting[1]["readers"]?.arrayValue?.first?["id"] == "r1")
    }

    @Test("arm, swipe: the card goes to the arming client only, masked; a watcher sees activity without card data")
    func armAndSwipe() async {
        let hub = ReaderHub()
        await hub.readerAppeared(id: "r1", name: "reader")
        let pos = RecordingClient(1), watcher = RecordingClient(2)
        _ = await hub.connect(pos)
        _ = await hub.connect(watcher)
        #expect(await hub.handle(.watch(true), from: 2).first?.kind == .watch)
        let armed = await hub.handle(.arm(reader: nil, timeout: 30, reference: "order-7"), from: 1)
        #expect(armed.first?.kind == .armed)
        #expect(armed.first?["reference"] == "order-7")
        await hub.swipe(decodedSwipe(), reader: "r1")
        let card = pos.received.last
        #expect(card?.kind == .card)
        #expect(card?["card_type"] == "payment")
        #expect(card?["masked_pan"] == "411111******1111")
        #expect(card?["last4"] == "1111")
        #expect(card?["expiry"] == "2812")
        #expect(card?["reference"] == "order-7")
        #expect(!(card?.text.contains("4111111111111111") ?? true))
        #expect(watcher.classes.contains("SWIPE"))
        #expect(!watcher.received.contains { $0.text.contains("411111") })
        // The arm has ended: the next swipe is ignored.
        await hub.swipe(decodedSwipe(), reader: "r1")
        #expect(pos.classes.filter { $0 == "CARD" }.count == 1)
        #expect(watcher.classes.last == "SWIPE_IGNORED")
    }

    @Test("the arm timeout rule as PROTOCOL.md states it: above the configured arm_timeout it is clamped and ARMED says the time granted; above 120 it is refused")
    func armTimeoutRule() async throws {
        let hub = ReaderHub(maximumArm: 30)
        await hub.readerAppeared(id: "r1", name: "reader")
        _ = await hub.connect(RecordingClient(1))
        let clamped = await hub.handle(.arm(reader: nil, timeout: 60, reference: nil), from: 1)
        #expect(clamped.first?.kind == .armed)
        #expect(clamped.first?["timeout_s"]?.numberValue == 30, "granted the configured maximum")
        let within = await hub.handle(.arm(reader: nil, timeout: 12.5, reference: nil), from: 1)
        #expect(within.first?["timeout_s"]?.numberValue == 12.5, "as asked")
        #expect(throws: ProtocolError.self) { try Request.parse(Array(#"{"cmd":"arm","timeout_s":121}"#.utf8)) }
        #expect(throws: ProtocolError.self) { try Request.parse(Array(#"{"cmd":"arm","timeout_s":0}"#.utf8)) }
        let long = String(repeating: "x", count: 257)
        #expect(throws: ProtocolError.self, "a reference of 257 bytes") {
            try Request.parse(Array(#"{"cmd":"arm","reference":"\#(long)"}"#.utf8))
        }
        let at256 = try Request.parse(Array(#"{"cmd":"arm","reference":"\#(String(long.dropFirst()))"}"#.utf8))
        #expect(at256 == .arm(reader: nil, timeout: nil, reference: String(long.dropFirst())), "256 bytes is allowed")
    }

    @Test("a bad read keeps the reader armed for a retry")
    func failedRead() async {
        let hub = ReaderHub()
        await hub.readerAppeared(id: "r1", name: "reader")
        let pos = RecordingClient(1)
        _ = await hub.connect(pos)
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1)
        await hub.swipe(decodedSwipe(cut: true), reader: "r1")
        #expect(pos.classes == ["SWIPE_FAILED"])
        #expect(pos.received[0]["reason"] == "partialSwipe")
        #expect(pos.received[0]["quality"]?["direction"] == nil && pos.received[0]["quality"]?["snr_db"] != nil, "no direction on a failed swipe")
        await hub.swipe(decodedSwipe(), reader: "r1")
        #expect(pos.classes == ["SWIPE_FAILED", "CARD"])
    }

    @Test("refusals: no reader, unknown reader, ambiguous reader, busy reader, cancel without an arm")
    func refusals() async {
        let hub = ReaderHub()
        let a = RecordingClient(1), b = RecordingClient(2)
        _ = await hub.connect(a)
        _ = await hub.connect(b)
        #expect(await hub.handle(.arm(reader: nil, timeout: nil, reference: nil), from: 1).first?["code"] == "no_reader")
        await hub.readerAppeared(id: "r1", name: "one")
        await hub.readerAppeared(id: "r2", name: "two")
        #expect(await hub.handle(.arm(reader: nil, timeout: nil, reference: nil), from: 1).first?["code"] == "ambiguous_reader")
        #expect(await hub.handle(.arm(reader: "r9", timeout: nil, reference: nil), from: 1).first?["code"] == "unknown_reader")
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1).first?.kind == .armed)
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 2).first?["code"] == "reader_busy")
        #expect(await hub.handle(.cancel(reader: nil), from: 2).first?["code"] == "not_armed")
        #expect(await hub.handle(.cancel(reader: nil), from: 1).first?.kind == .cancelled)
        // Now free for the other client.
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 2).first?.kind == .armed)
    }

    @Test("an arm times out with TIMEOUT; a disconnect disarms; a removed reader ends its arm")
    func endings() async throws {
        let (hub, a, b) = await twoReaderHub()
        _ = await hub.handle(.arm(reader: "r1", timeout: 0.2, reference: nil), from: 1)
        for _ in 0..<100 where a.classes.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(a.classes == ["TIMEOUT"])
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1)
        await hub.disconnect(1)
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 2).first?.kind == .armed)
        await hub.readerRemoved(id: "r1")
        #expect(b.classes == ["READER_REMOVED"])
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 2).first?["code"] == "unknown_reader")
    }

    @Test("each arm times out at its own deadline, whatever order they came in; arming again ends the earlier arm and sets a new deadline; a cancelled arm never times out")
    func deadlines() async throws {
        let hub = ReaderHub()
        for r in ["r1", "r2", "r3"] { await hub.readerAppeared(id: r, name: r) }
        let a = RecordingClient(1), b = RecordingClient(2), c = RecordingClient(3)
        for client in [a, b, c] { _ = await hub.connect(client) }
        let start = monotonicNow()
        _ = await hub.handle(.arm(reader: "r1", timeout: 0.9, reference: "long"), from: 1)
        _ = await hub.handle(.arm(reader: "r2", timeout: 0.3, reference: "short"), from: 2)
        _ = await hub.handle(.arm(reader: "r3", timeout: 0.2, reference: "cancelled"), from: 3)
        _ = await hub.handle(.cancel(reader: nil), from: 3)
        // While the short arm waits, the long one is armed again for 1.2 s.
        try await Task.sleep(for: .milliseconds(150))
        let rearmed = monotonicNow()
        _ = await hub.handle(.arm(reader: "r1", timeout: 1.2, reference: "long"), from: 1)
        // Under the full suite this task may wait its turn for seconds, and the first long arm
        // may have timed out before it was armed again: what the hub had sent by the time it
        // took the new arm is in `a` already.
        let earlier = a.classes.count
        // When each TIMEOUT is seen (late on a loaded machine, never early). Bounded by turns,
        // not by the clock.
        var shortEnd: Double?, longEnd: Double?
        for _ in 0..<3_000 where shortEnd == nil || longEnd == nil {
            if shortEnd == nil, b.classes.contains("TIMEOUT") { shortEnd = monotonicNow() }
            if longEnd == nil, a.classes.count > earlier { longEnd = monotonicNow() }
            try await Task.sleep(for: .milliseconds(10))
        }
        let short = try #require(shortEnd), long = try #require(longEnd)
        #expect(short - start >= 0.3)
        #expect(long - rearmed >= 1.2, "the second arm's 1.2 s, not the first's 0.9 s: \(long - start) s after the first")
        // The first long arm ended once: superseded by the second, or timed out before it.
        #expect(earlier == 1 && ["SUPERSEDED", "TIMEOUT"].contains(a.classes.first) && a.classes.dropFirst() == ["TIMEOUT"], "\(a.classes)")
        #expect(b.classes == ["TIMEOUT"])
        #expect(!c.classes.contains("TIMEOUT"))
    }

    @Test("reader state: jack and flaps to watchers and STATUS; a capture failure ends the arm and refuses the next; an unchanged reader is not announced twice")
    func readerState() async throws {
        let hub = ReaderHub()
        var info = ReaderInfo(id: "hw:CARD=PCH,DEV=0", name: "HDA Intel PCH")
        info.source = .config
        info.card = "PCH"
        await hub.readerAppeared(info, present: false)
        let pos = RecordingClient(1), watcher = RecordingClient(2)
        _ = await hub.connect(pos)
        _ = await hub.connect(watcher)
        _ = await hub.handle(.watch(true), from: 2)
        #expect(await hub.handle(.arm(reader: nil, timeout: nil, reference: nil), from: 1).first?["code"] == "no_reader")
        await hub.readerAppeared(info)
        await hub.readerJack(id: info.id, jack: .plugged, flaps: 2)
        let last = try #require(watcher.received.last)
        #expect(last["jack"] == "in")
        #expect(last["jack_flaps"] == 2)
        #expect(last["source"] == "config")
        #expect(last["card"] == "PCH")
        let status = try #require(await hub.handle(.status, from: 2).first)
        #expect(status["counters"]?["jack_flaps"] == 2)
        // The jack watch counts from 0 again when it restarts: the daemon's count goes on.
        await hub.readerJack(id: info.id, jack: .plugged, flaps: 1)
        #expect(watcher.received.last?["jack_flaps"] == 3)
        let later = try #require(await hub.handle(.status, from: 2).first)
        #expect(later["counters"]?["jack_flaps"] == 3)
        #expect(await hub.handle(.arm(reader: nil, timeout: nil, reference: "s-1"), from: 1).first?.kind == .armed)
        await hub.readerFailed(id: info.id, error: "capture not opened: busy")
        let ending = try #require(pos.received.last)
        #expect(ending["class"] == "READER_REMOVED")
        #expect(ending["reference"] == "s-1")
        #expect(ending["message"] == "capture not opened: busy")
        let refused = try #require(await hub.handle(.arm(reader: info.id, timeout: nil, reference: nil), from: 1).first)
        #expect(refused["code"] == "reader_unavailable")
        #expect(refused["message"]?.stringValue?.contains("busy") == true)
        // Capturing again clears the error.
        await hub.readerCapturing(id: info.id, true)
        #expect(watcher.received.last?["error"] == nil)
        #expect(await hub.handle(.arm(reader: info.id, timeout: nil, reference: nil), from: 1).first?.kind == .armed)
        await hub.readerRemoved(id: info.id)
        let seen = watcher.received.count
        await hub.readerRemoved(id: info.id)
        await hub.readerJack(id: info.id, jack: .plugged, flaps: 1)
        #expect(watcher.received.count == seen, "nothing changed: nothing announced")
    }

    @Test("release: the arm on the reader ends, the reader is unavailable until taken back; unknown readers and a hub without devices refuse")
    func release() async throws {
        let hub = ReaderHub()
        await hub.readerAppeared(id: "r1", name: "one")
        let pos = RecordingClient(1), technician = RecordingClient(2, uid: 0, admin: true)
        _ = await hub.connect(pos)
        _ = await hub.connect(technician)
        #expect(await hub.handle(.release(reader: "r1", seconds: 30), from: 2).first?["code"] == "not_releasable")
        let calls = CallLog()
        await hub.setReleaser { reader, seconds in
            calls.add("\(reader) \(Int(seconds))")
            return reader == "r1" ? nil : "a recording"
        }
        #expect(await hub.handle(.release(reader: "nope", seconds: 30), from: 2).first?["code"] == "unknown_reader")
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: "sale-9"), from: 1)
        let released = try #require(await hub.handle(.release(reader: "r1", seconds: 30), from: 2).first)
        #expect(released["class"] == "RELEASED")
        #expect(released["seconds"] == 30)
        #expect(pos.received.last?.kind == .readerRemoved)
        #expect(pos.received.last?["reference"] == "sale-9")
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1).first?["code"] == "reader_unavailable")
        #expect(await hub.handle(.release(reader: "r1", seconds: 0), from: 2).first?.kind == .released)
        await hub.readerCapturing(id: "r1", true)
        #expect(await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1).first?.kind == .armed)
        #expect(calls.list == ["r1 30", "r1 0"])
    }

    @Test("shutdown tells armed clients CANCELLED; bindings persist")
    func shutdownAndBindings() async throws {
        let path = "/tmp/posmini-bindings-\(getpidValue())"
        let hub = ReaderHub(bindingsPath: path)
        await hub.readerAppeared(id: "r1", name: "one")
        let a = RecordingClient(1)
        _ = await hub.connect(a)
        #expect(await hub.handle(.bind("r1"), from: 1).first?.kind == .bound)
        #expect(await hub.handle(.bind("nope"), from: 1).first?["code"] == "unknown_reader")
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: "x"), from: 1)
        await hub.shutdown()
        #expect(a.classes.last == "CANCELLED")
        let again = ReaderHub(bindingsPath: path)
        await again.readerAppeared(id: "r1", name: "one")
        let greeting = await again.connect(RecordingClient(5))
        #expect(greeting[1]["readers"]?.arrayValue?.first?["bound"] == true)
        #expect(await again.handle(.unbind("r1"), from: 5).first?.kind == .unbound)
    }
}

@Suite("Protocol requests and configuration")
struct RequestTests {
    func parse(_ text: String) -> Result<Request, ProtocolError> {
        do throws(ProtocolError) { return .success(try Request.parse(Array(text.utf8))) } catch { return .failure(error) }
    }

    func code(_ text: String) -> String? {
        if case .failure(let error) = parse(text) { return error.code }
        return nil
    }

    @Test("every command parses, with its arguments")
    func commands() throws {
        #expect(try parse(#"{"cmd":"watch","enable":false}"#).get() == .watch(false))
        #expect(try parse(#"{"cmd":"arm","reader":"r1","timeout_s":30,"reference":"A1"}"#).get() == .arm(reader: "r1", timeout: 30, reference: "A1"))
        #expect(try parse(#"{"cmd":"arm"}"#).get() == .arm(reader: nil, timeout: nil, reference: nil))
        #expect(try parse(#"{"cmd":"cancel"}"#).get() == .cancel(reader: nil))
        #expect(try parse(#"{"cmd":"status"}"#).get() == .status)
        #expect(try parse(#"{"cmd":"bind","reader":"r1"}"#).get() == .bind("r1"))
        #expect(try parse(#"{"cmd":"release","reader":"r1","seconds":60}"#).get() == .release(reader: "r1", seconds: 60))
        #expect(try parse(#"{"cmd":"release","reader":"r1","seconds":0}"#).get() == .release(reader: "r1", seconds: 0))
    }

    @Test("bad requests name the problem")
    func refusals() {
        #expect(code("not json") == "invalid_json")
        #expect(code("[1,2]") == "invalid_request")
        #expect(code(#"{"enable":true}"#) == "invalid_request")
        #expect(code(#"{"cmd":5}"#) == "invalid_request")
        #expect(code(#"{"cmd":"fly"}"#) == "unknown_command")
        #expect(code(#"{"cmd":"arm","timeout_s":"soon"}"#) == "invalid_request")
        #expect(code(#"{"cmd":"arm","timeout_s":500}"#) == "invalid_timeout")
        #expect(code(#"{"cmd":"arm","timeout_s":0}"#) == "invalid_timeout")
        #expect(code(#"{"cmd":"watch","enable":"yes"}"#) == "invalid_request")
        #expect(code(#"{"cmd":"status","extra":1}"#) == "invalid_request")
        #expect(code(#"{"cmd":"bind"}"#) == "invalid_request")
        #expect(code(#"{"cmd":"release","seconds":5}"#) == "invalid_request")
        #expect(code(#"{"cmd":"release","reader":"r1"}"#) == "invalid_request")
        #expect(code(#"{"cmd":"release","reader":"r1","seconds":-1}"#) == "invalid_request")
        #expect(code(#"{"cmd":"release","reader":"r1","seconds":901}"#) == "invalid_request")
        #expect(code(#"{"cmd":"release","reader":"r1","seconds":"long"}"#) == "invalid_request")
        #expect((try? Request.parse([0x7B, 0xFF, 0x7D])) == nil)
        do { _ = try Request.parse([0x7B, 0xFF, 0x7D]) } catch { #expect(error.code == "invalid_utf8") }
    }

    @Test("the JSON reader: RFC 8259 values read, escapes and surrogate pairs joined; malformed text, lone surrogates, control characters, leading zeros, trailing data and deep nesting refused")
    func jsonReader() throws {
        let v = try JSONValue.parse(Array(#" { "a" : [1, -2.5e3, 0.25, true, false, null], "s": "\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00" } "#.utf8))
        #expect(v["a"] == [1, -2500, 0.25, true, false, nil])
        #expect(v["s"]?.stringValue == "\"\\/\u{08}\u{0C}\n\r\té😀")
        #expect(try JSONValue.parse(Array("\"caf\u{e9}\"".utf8)) == "café")
        // A member named twice is refused (0.5.0 took the last), spelt alike or through escapes,
        // at any depth; the same name in two different objects is fine.
        for twice in [#"{"k":1,"k":2}"#, #"{"k":1,"\u006b":2}"#, #"{"a":{"k":1,"k":1}}"#, #"[{"x":1},{"k":[],"k":null}]"#] {
            #expect(throws: JSONValue.ParseError.duplicateKey("k"), "\(twice)") { _ = try JSONValue.parse(Array(twice.utf8)) }
        }
        #expect(try JSONValue.parse(Array(#"[{"k":1},{"k":2}]"#.utf8)) == [["k": 1], ["k": 2]])
        do {
            _ = try Request.parse(Array(#"{"cmd":"arm","reader":"a","reader":"b"}"#.utf8))
            Issue.record("a request with a field twice was taken")
        } catch {
            #expect(error.code == "invalid_request")
            #expect(error.message.contains("\"reader\" is given twice"), "\(error.message)")
        }
        for bad in [#"{"a":1,}"#, #"[1,]"#, #"{"a" 1}"#, "01", "1.", ".5", "1e", "-", "+1", "nul", "tru", #""\ud800""#, #""\udc00""#,
                    "\"a\u{01}b\"", #""\x""#, #"{"a":1} x"#, "", " ", #"{'a':1}"#, "1e999", #""\u12""#, "[" ] {
            #expect(throws: JSONValue.ParseError.invalidJSON, "\(bad)") { _ = try JSONValue.parse(Array(bad.utf8)) }
        }
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONValue.ParseError.invalidJSON) { _ = try JSONValue.parse(Array(deep.utf8)) }
        let fine = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        #expect(throws: Never.self) { _ = try JSONValue.parse(Array(fine.utf8)) }
        let hostile = String(repeating: "[", count: 100_000)
        #expect(throws: JSONValue.ParseError.invalidJSON) { _ = try JSONValue.parse(Array(hostile.utf8)) }
        // Round trip of what the daemon writes.
        let message: JSONValue = ["class": "ERROR", "message": "tab\tquote\" é \u{01}", "n": 3, "x": 0.5]
        #expect(try JSONValue.parse(Array(message.text.utf8)) == message)
    }

    @Test("replies are one line, class first, with escapes")
    func replies() {
        let message: JSONValue = ["class": "ERROR", "code": "x", "message": "a \"quote\"\nand a line"]
        #expect(message.text == #"{"class":"ERROR","code":"x","message":"a \"quote\"\nand a line"}"#)
    }

    @Test("configuration: every key, and refusals naming file and line")
    func configuration() throws {
        let text = """
            # posminid test configuration
            socket = /tmp/x.sock
            socket_group = pos
            allow_user = 1000
            allow_group = staff
            admin_group = techs
            device = hw:CARD=Reader,DEV=0
            device = plughw:2,0
            mask_first = 6
            mask_last = 4
            arm_timeout = 60
            max_clients = 8
            client_queue_kib = 64
            log_level = debug
            realtime_priority = 10
            state_directory = /tmp/state
            clear_non_payment = true
            metrics_textfile = /run/posminid/metrics.prom
            metrics_interval = 30
            """
        let c = try DaemonConfiguration.parse(text, file: "t.conf")
        #expect(c.metricsTextfile == "/run/posminid/metrics.prom" && c.metricsInterval == 30)
        #expect(DaemonConfiguration().metricsTextfile == nil && DaemonConfiguration().metricsInterval == 15, "no file by default")
        #expect(c.clearNonPayment && !DaemonConfiguration().clearNonPayment, "on as set; off by default")
        #expect(c.socketPath == "/tmp/x.sock" && c.socketGroup == "pos")
        #expect(c.devices == ["hw:CARD=Reader,DEV=0", "plughw:2,0"])
        #expect(c.armTimeout == 60 && c.maxClients == 8 && c.clientQueueBytes == 64 * 1024)
        #expect(c.logLevel == "debug" && c.realTimePriority == 10 && c.allowUsers == ["1000"])
        #expect(c.adminGroup == "techs")
        for (bad, line, words) in [
            ("colour = blue", 1, "unknown key 'colour'"),
            ("\n\nmax_clients = lots", 3, "whole number"),
            ("log_level = loud", 1, "log_level"),
            ("socket = relative.sock", 1, "absolute"),
            ("arm_timeout = 500", 1, "1 to 120"),
            ("rate = 44100\nrate = 48000", 2, "twice"),
            ("just words", 1, "key = value"),
            ("admin_group = root", 1, "cannot be root's group"),
            ("admin_group = 0", 1, "cannot be root's group"),
            ("admin_group = a\nadmin_group = b", 2, "twice"),
            ("clear_non_payment = sometimes", 1, "true or false"),
            ("metrics_textfile = metrics.prom", 1, "absolute path ending in .prom"),
            ("metrics_textfile = /run/posminid/metrics.txt", 1, "absolute path ending in .prom"),
            ("metrics_interval = 0", 1, "1 to 3600"),
        ] {
            do {
                _ = try DaemonConfiguration.parse(bad, file: "bad.conf")
                Issue.record("accepted \(bad)")
            } catch {
                #expect(error.line == line && error.description.hasPrefix("bad.conf:\(line):") && error.description.contains(words),
                        "\(error.description)")
            }
        }
        #expect((try? DaemonConfiguration.load("/nonexistent/posminid.conf", optional: true)) == DaemonConfiguration())
        #expect((try? DaemonConfiguration.load("/nonexistent/posminid.conf", optional: false)) == nil)
    }
}

@Suite("Reader hub: events and requests")
struct EventPumpTests {
    /// The swipe count a STATUS reply reports.
    func swipes(_ hub: ReaderHub) async -> Int {
        Int(await hub.handle(.status, from: 1).first?["counters"]?["swipes"]?.numberValue ?? -1)
    }

    @Test("a backlog of 2 000 events: a request sent as the pump starts, and the requests while it drains, wait behind two events (the median), never the backlog; events reach the hub in order, the ended last")
    func requestsBetweenEvents() async throws {
        // An arm that outlasts any machine's pace: this test counts events, not seconds.
        let hub = ReaderHub(maximumArm: 86_400)
        await hub.readerAppeared(id: "r1", name: "reader")
        let pos = RecordingClient(1)
        _ = await hub.connect(pos)
        _ = await hub.handle(.arm(reader: "r1", timeout: nil, reference: nil), from: 1)
        // A failed swipe keeps the arm: every one of them is sent to the POS app, in order.
        let failed = decodedSwipe(cut: true)
        let backlog = 2_000
        let events = EventQueue<ReaderEvent>(capacity: backlog + 1)
        for _ in 0..<backlog { #expect(events.put(.swipe(failed), waitForRoom: false)) }
        #expect(events.put(.ended(nil), waitForRoom: false))
        let ended = Mutex<Int?>(nil)
        // The replay is held (the events wait in the queue); the request goes, then the pump starts.
        async let first = swipes(hub)
        let pump = Task { await EventPump.run(events, reader: "r1", hub: hub, ended: { _ in ended.withLock { $0 = pos.count } }) }
        let waitedBehind = await first
        #expect(waitedBehind >= 0 && waitedBehind <= 2, "the first request waited behind \(waitedBehind) events")
        // While the backlog drains: each request waits behind the event being handled when it
        // came, and at most one more. (Counted from what the hub had sent when the request
        // went, not from the last reply: how soon this task asks again is the scheduler's
        // business, not the hub's.)
        // Until the pump has handled the ended (bounded by the events, not by the clock: however
        // slowly the machine runs, or whatever happens to the arm, the loop ends with the pump).
        // The width of one request is read from this task: if the system takes the thread away
        // between reading the count and sending the request, the pump goes on alone and that one
        // width grows. So the median is judged (a hub that let requests wait behind the backlog
        // would answer none while it drained, and every width would be large), and the widest is
        // printed.
        var widths: [Int] = [], during = 0
        // (At most 5 000 requests: a hub may answer many requests between two events.)
        while ended.withLock({ $0 }) == nil && widths.count < 5_000 {
            let before = pos.count
            let now = await swipes(hub)
            widths.append(now - before)
            if now < backlog { during += 1 }
        }
        widths.sort()
        let median = widths.isEmpty ? Int.max : widths[widths.count / 2]
        print("requests during a backlog of \(backlog) events: \(during) of \(widths.count) answered before it drained; each behind \(median) event(s) (median), \(widths.last ?? 0) at most")
        await pump.value
        #expect(median <= 2, "requests waited behind \(median) events (median)")
        #expect(during > 0, "no request was answered while the backlog drained")
        #expect(pos.classes.count == backlog, "every SWIPE_FAILED")
        #expect(ended.withLock { $0 } == backlog, "ended came after the last swipe")
        #expect(events.overflows == 0)
    }

    @Test("a full queue: a live source's event is dropped and counted, a recording's waits for room; closing frees a waiting producer")
    func boundedQueue() async throws {
        let events = EventQueue<Int>(capacity: 2)
        #expect(events.put(1, waitForRoom: false))
        #expect(events.put(2, waitForRoom: false))
        #expect(!events.put(3, waitForRoom: false))
        #expect(events.overflows == 1)
        // A producer that waits for room (on a thread of its own, as a decoder thread does: it
        // blocks): it gets in once the consumer takes one.
        let outcomes = Mutex<[Bool]>([])
        let producer = OSThread(name: "producer") { let ok = events.put(4, waitForRoom: true); outcomes.withLock { $0.append(ok) } }
        #expect(await events.next() == 1)
        producer.join()
        #expect(outcomes.withLock { $0 } == [true])
        #expect(await events.next() == 2)
        #expect(await events.next() == 4)
        // Full again, then closed: the waiting producer gives up, the consumer drains and ends.
        _ = events.put(5, waitForRoom: false)
        _ = events.put(6, waitForRoom: false)
        let stuck = OSThread(name: "stuck") { let ok = events.put(7, waitForRoom: true); outcomes.withLock { $0.append(ok) } }
        events.close()
        stuck.join()
        #expect(outcomes.withLock { $0 } == [true, false])
        #expect(await events.next() == 5)
        #expect(await events.next() == 6)
        #expect(await events.next() == nil)
        #expect(!events.put(8, waitForRoom: false))
        #expect(events.overflows == 1, "a closed queue refuses without counting an overflow")
    }
}
