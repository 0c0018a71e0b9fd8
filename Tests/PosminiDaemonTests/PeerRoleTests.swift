import PosminiClient
import PosminiProtocol
import Testing
import AudioFile
import Magstripe
import PosminiDaemon
import SwipeSynth
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A client of the daemon under another uid: Tests/Harness/peer_relay.py run through `setpriv`
/// connects to the daemon as that user and relays one local connection, which this wraps. The
/// suite runs as root, and root is an admin: roles are tested through these.
final class PeerClient {
    let pid: Int32
    let client: ControlClient
    let uid: UInt32

    /// `groups`: the supplementary groups the process keeps (none unless given).
    init(socket: String, directory: String, uid: UInt32, groups: [UInt32] = [], greeted: Bool = true) throws {
        self.uid = uid
        // The daemon's socket past its file mode (the credentials decide), and a directory of
        // the user's own for the relay's socket.
        chmod(directory, 0o755)
        chmod(socket, 0o666)
        let own = directory + "/peer-\(uid)-\(UInt32.random(in: 0...UInt32.max))"
        guard mkdir(own, 0o700) == 0, chown(own, uid, uid) == 0 else { throw Failure.setup("cannot make \(own)") }
        let script = own + "/peer_relay.py"
        let text = readText(packageRoot + "/Tests/Harness/peer_relay.py")
        let file = fopen(script, "w")!
        fputs(text, file)
        fclose(file)
        chmod(script, 0o644)
        let relay = own + "/relay.sock"
        let groupOption = groups.isEmpty ? "--clear-groups" : "--groups=" + groups.map(String.init).joined(separator: ",")
        let command = "setpriv --reuid=\(uid) --regid=\(uid) \(groupOption) /usr/bin/python3 \(shellQuoted(script)) \(shellQuoted(socket)) \(shellQuoted(relay))"
        let out = own + "/out", err = own + "/err", pidFile = own + "/pid"
        _ = system("sh -c \(shellQuoted("(exec " + command + ") >'\(out)' 2>'\(err)' & echo $! >'\(pidFile)'"))")
        pid = Int32(readText(pidFile).split(separator: "\n").first ?? "") ?? -1
        // Ready once it says so (or it has died): bounded by tries, not by the clock.
        var ready = false
        for _ in 0..<1_000 {
            if readText(out).contains("ready") { ready = true; break }
            if pid <= 0 || kill(pid, 0) != 0 { break }
            usleep(10_000)
        }
        guard ready else { throw Failure.setup("relay for uid \(uid) did not start: \(readText(err))") }
        client = try ControlClient(path: relay)
        if greeted {
            #expect(try client.nextReply(timeout: 10)?.kind == .version)
            #expect(try client.nextReply(timeout: 10)?.kind == .readers)
        }
    }

    enum Failure: Error { case setup(String) }

    func send(_ request: JSONValue) throws { try client.send(request) }
    func next(timeout: Double = 10) throws -> Reply? { try client.nextReply(timeout: timeout) }

    /// Sends `request` and returns the reply (the next message).
    func ask(_ request: JSONValue) throws -> Reply? {
        try client.send(request)
        return try client.nextReply(timeout: 10)
    }

    deinit {
        client.close()
        if pid > 0 { kill(pid, SIGTERM) }
    }
}

extension ProcessSuites.DaemonTests {
    /// A recording of Track 1 swipes 2.5 s apart over one steady noise bed, played `repeats`
    /// times: whenever a client arms, a swipe follows within a few seconds, so no test races
    /// the replay.
    func repeatingDaemon(config: String, repeats: Int = 40) throws -> Daemon {
        let directory = try temporaryDirectory()
        var samples = [Float](repeating: 0, count: 44_100 / 2)
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 80
        audio.leadingSilence = 0.05
        audio.trailingSilence = 1.5
        let scenario = SwipeScenario(tracks: [try StripeTrack(text: Self.track1, format: .track1)],
                                     motion: Motion(speed: .constant(300)), audio: audio, seed: 3)
        samples += SwipeSynthesizer.render(scenario).channels[0]
        var random = TestRandom(seed: 29)
        for k in samples.indices { samples[k] += 0.0017 * (Float(random.next() >> 40) / Float(1 << 24) * 2 - 1) }
        let replay = directory + "/repeating.wav"
        write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: replay)
        write(Array(config.utf8), to: directory + "/posminid.conf")
        let socket = directory + "/posmini.sock"
        let process = try Background(["--replay", replay, "--replay-repeat", String(repeats), "--socket", socket,
                                      "--state-directory", directory, "--test-key", "--config", directory + "/posminid.conf"],
                                     environment: [:], directory: directory)
        return Daemon(process: process, socket: socket, directory: directory)
    }

    /// Reads `client`'s messages until one of class `name` (at most `limit` messages).
    func awaitClass(_ name: String, from client: PeerClient, limit: Int = 40) throws -> (Reply?, [String]) {
        var seen: [String] = []
        for _ in 0..<limit {
            guard let m = try client.next(timeout: 15) else { break }
            seen.append(m["class"]?.stringValue ?? "?")
            if m.messageClass == name { return (m, seen) }
        }
        return (nil, seen)
    }

    @Test("the steal sequence against the daemon, as two POS users: B's release 900, release 0, arm and bind are refused; A stays armed and gets the CARD; B gets nothing")
    func stealSequence() throws {
        let daemon = try repeatingDaemon(config: "allow_user = 4241\nallow_user = 4244\n")
        defer { daemon.stop() }
        _ = try daemon.greeted()
        let a = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4241)
        let b = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4244)
        #expect(try a.ask(["cmd": "arm", "timeout_s": 120, "reference": "sale-A"])?.kind == .armed)
        #expect(try b.ask(["cmd": "release", "reader": "replay", "seconds": 900])?["code"] == "not_permitted")
        #expect(try b.ask(["cmd": "release", "reader": "replay", "seconds": 0])?["code"] == "not_permitted")
        #expect(try b.ask(["cmd": "arm"])?["code"] == "reader_busy")
        #expect(try b.ask(["cmd": "bind", "reader": "replay"])?["code"] == "reader_busy")
        let (card, seen) = try awaitClass("CARD", from: a)
        #expect(card?["reference"] == "sale-A", "A saw \(seen)")
        #expect(!seen.contains("READER_REMOVED") && !seen.contains("CANCELLED"), "\(seen)")
        #expect(card?["masked_pan"] == "411111******1111")
        // B's next message is the answer to its status: nothing came to it in between.
        let status = try b.ask(["cmd": "status"])
        #expect(status?.kind == .status, "\(status?.text ?? "nothing")")
        #expect(status?["readers"]?.arrayValue?.first?["error"] == nil, "the reader was never released")
        let log = readText(daemon.process.stderr)
        #expect(log.contains("uid 4241") && log.contains("uid 4244"))
    }

    @Test("roles at the daemon: a POS user binds to itself; another POS user cannot arm, unbind or release; an admin (admin_group, kept by the process) may; one that dropped the group may not")
    func rolesAtTheDaemon() throws {
        let daemon = try repeatingDaemon(config: "allow_user = 4241\nallow_user = 4244\nallow_user = 4246\nadmin_group = 4242\n")
        defer { daemon.stop() }
        let root = try daemon.greeted()
        let a = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4241)
        let b = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4244)
        // An admin who is in no allowed list: the admin group lets it connect.
        let admin = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4243, groups: [4242])
        // Listed as a user but running without the admin group: a POS user.
        let dropped = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4246)
        for c in [a, b, admin, dropped] {
            #expect(try c.ask(["cmd": "status"])?.kind == .status)
            #expect(try c.ask(["cmd": "watch", "enable": false])?.kind == .watch)
        }
        #expect(try a.ask(["cmd": "bind", "reader": "replay"])?.kind == .bound)
        #expect(try b.ask(["cmd": "arm"])?["code"] == "not_permitted")
        #expect(try b.ask(["cmd": "unbind", "reader": "replay"])?["code"] == "not_permitted")
        #expect(try b.ask(["cmd": "bind", "reader": "replay"])?["code"] == "not_permitted")
        for c in [a, b, dropped] {
            #expect(try c.ask(["cmd": "release", "reader": "replay", "seconds": 30])?["code"] == "not_permitted")
        }
        // Admins are let through to the device, which a replay does not have.
        #expect(try admin.ask(["cmd": "release", "reader": "replay", "seconds": 30])?["code"] == "not_releasable")
        try root.send(["cmd": "release", "reader": "replay", "seconds": 30])
        #expect(try root.nextReply(timeout: 10)?.errorCode == "not_releasable")
        #expect(try admin.ask(["cmd": "arm", "timeout_s": 60])?.kind == .armed)
        #expect(try admin.ask(["cmd": "cancel"])?.kind == .cancelled)
        #expect(try dropped.ask(["cmd": "unbind", "reader": "replay"])?["code"] == "not_permitted")
        #expect(try admin.ask(["cmd": "unbind", "reader": "replay"])?.kind == .unbound)
        #expect(try b.ask(["cmd": "arm", "timeout_s": 60])?.kind == .armed)
        #expect(try b.ask(["cmd": "cancel"])?.kind == .cancelled)
        #expect(try a.ask(["cmd": "bind", "reader": "replay"])?.kind == .bound)
        #expect(readText(daemon.directory + "/bindings").contains("replay\t4241\n"), "\(readText(daemon.directory + "/bindings"))")
        #expect(readText(daemon.process.stderr).contains("uid 4243 pid"))
        #expect(readText(daemon.process.stderr).contains("(admin)"))
    }

    @Test("one user's flood leaves slots for the others: a uid holds at most max_clients - 4; past max_clients everyone is refused; a freed slot is taken again")
    func slotsPerUser() throws {
        let daemon = try repeatingDaemon(config: "max_clients = 6\nallow_user = 4241\nallow_user = 4244\nallow_user = 4245\n")
        defer { daemon.stop() }
        var roots = [try daemon.greeted(), try daemon.greeted()]
        defer { roots.forEach { $0.close() } }
        let flood = try daemon.client()
        #expect(try flood.nextReply(timeout: 10)?.errorCode == "too_many_for_user")
        #expect(try flood.nextReply(timeout: 10) == nil, "refused, then closed")
        let a1 = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4241)
        let a2 = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4241)
        let a3 = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4241, greeted: false)
        #expect(try a3.next()?["code"] == "too_many_for_user")
        let b1 = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4244)
        let b2 = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4244)
        let c = try PeerClient(socket: daemon.socket, directory: daemon.directory, uid: 4245, greeted: false)
        #expect(try c.next()?["code"] == "too_many_clients")
        // A root client leaves: its slot is root's again.
        roots.removeLast().close()
        let again = try daemon.clientOnceSlotFree()
        #expect(again != nil)
        for peer in [a1, a2, b1, b2] { #expect(try peer.ask(["cmd": "status"])?.kind == .status) }
        // The connections turned away are in the metrics, by code (an operator sees them).
        guard case .metrics(let text)? = try b1.ask(["cmd": "metrics"]) else { Issue.record("no METRICS"); return }
        func refused(_ code: String) -> Double? {
            let head = "posminid_protocol_errors_total{code=\"\(code)\"} "
            return text.split(separator: "\n").first { $0.hasPrefix(head) }.flatMap { Double($0.dropFirst(head.count)) }
        }
        #expect(refused("too_many_for_user") == 2, "\(text)")
        // At least c; waiting for the freed slot may have been turned away too.
        #expect((refused("too_many_clients") ?? 0) >= 1, "\(text)")
    }

    @Test("a request line of 4 096 bytes ends in LF or CRLF, the CR even in a read of its own; 4 097 is too long either way")
    func crlfFraming() throws {
        let daemon = try startDaemon(replayDelay: 20)
        defer { daemon.stop() }
        let c = try daemon.greeted()
        let request = #"{"cmd":"status""#
        let full = request + String(repeating: " ", count: PosminiProtocol.maximumLine - request.utf8.count - 1) + "}"
        #expect(full.utf8.count == PosminiProtocol.maximumLine)
        for ending in ["\n", "\r\n"] {
            try c.sendRaw(Array((full + ending).utf8))
            #expect(try c.nextReply(timeout: 10)?.kind == .status, "ending \(Array(ending.utf8))")
        }
        try c.sendRaw(Array((full + "\r").utf8))
        #expect(try c.nextReply(timeout: 0.5) == nil, "waits for the LF")
        try c.sendRaw([0x0A])
        #expect(try c.nextReply(timeout: 10)?.kind == .status)
        let long = try daemon.greeted()
        try long.sendRaw(Array((full + " \r\n").utf8))
        #expect(try long.nextReply(timeout: 10)?.errorCode == "line_too_long")
    }
}
