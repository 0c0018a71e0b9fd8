import PosminiClient
import PosminiProtocol
import Testing
import AudioFile
import Magstripe
import SwipeSynth
import PosminiDaemon
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A umockdev testbed (Tests/Harness/udev_testbed.py under umockdev-wrapper), driven one
/// command at a time: sound cards appear, change and go as udev would report them.
final class UdevTestbed {
    let root: String
    private let pid: pid_t
    private let input: Int32
    private let output: Int32
    private var buffered: [UInt8] = []

    enum Failure: Error { case notStarted(String), command(String, String) }

    init(directory: String) throws {
        var toChild: [Int32] = [0, 0], fromChild: [Int32] = [0, 0]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { throw Failure.notStarted("pipe") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, directory + "/testbed.stderr", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        for fd in toChild + fromChild { posix_spawn_file_actions_addclose(&actions, fd) }
        let words = ["umockdev-wrapper", "/usr/bin/python3", packageRoot + "/Tests/Harness/udev_testbed.py"]
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawnp(&child, "umockdev-wrapper", &actions, nil, &argv, environ)
        close(toChild[0])
        close(fromChild[1])
        input = toChild[1]
        output = fromChild[0]
        pid = child
        var first: String?
        if rc == 0 { first = Self.readLine(output, buffer: &buffered, timeout: 20) }
        guard rc == 0, let first, first.hasPrefix("/") else {
            close(input)
            close(output)
            throw Failure.notStarted("umockdev-wrapper: \(rc) \(first ?? "no output") \(readText(directory + "/testbed.stderr"))")
        }
        root = first
    }

    deinit {
        close(input)
        close(output)
        var status: Int32 = 0
        kill(pid, SIGTERM)
        waitpid(pid, &status, 0)
    }

    /// Sends one command; returns what followed `ok`.
    @discardableResult
    func command(_ line: String) throws -> String {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(input, $0.baseAddress, $0.count) }
        guard let reply = Self.readLine(output, buffer: &buffered, timeout: 10), reply.hasPrefix("ok") else {
            throw Failure.command(line, "no ok")
        }
        return String(reply.dropFirst(2).drop { $0 == " " })
    }

    /// A card the way the kernel and udev announce it: `add` (udev's rules not run yet), then
    /// `change` with `SOUND_INITIALIZED=1`. Returns the syspath.
    @discardableResult
    func plug(_ name: String, number: Int, id: String, properties: [String: String], initialize: Bool = true) throws -> String {
        let words = ["add", name, "@id=\(id)", "@number=\(number)"] + properties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let path = try command(words.joined(separator: " "))
        if initialize { try initialized(path) }
        return path
    }

    func initialized(_ path: String) throws {
        try command("set \(path) SOUND_INITIALIZED 1")
        try command("uevent \(path) change")
    }

    func unplug(_ path: String) throws { try command("remove \(path)") }

    private static func readLine(_ fd: Int32, buffer: inout [UInt8], timeout: Double) -> String? {
        let deadline = monotonicNow() + timeout
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return line
            }
            let left = deadline - monotonicNow()
            guard left > 0 else { return nil }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(left * 1_000)) == 1 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 4_096)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return nil }
            buffer += chunk[0..<n]
        }
    }
}

extension ProcessSuites {
    /// Readers arriving and leaving through udev (real libudev, umockdev's testbed behind it).
    @Suite("udev hot-plug")
    struct HotplugTests: CommandTesting {
        static let readerProperties = ["POSMINI_READER": "1", "ID_PATH": "pci-0000:00:14.0-usb-0:2:1.0",
                                       "ID_SERIAL": "Acme_Reader_0001", "ID_MODEL": "Acme_Reader", "ID_BUS": "usb"]
        static let readerID = "Acme_Reader_0001@pci-0000:00:14.0-usb-0:2:1.0"

        struct Daemon {
            let process: Background
            let socket: String

            func greeted() throws -> ControlClient {
                var last: (any Error)?
                for _ in 0..<100 {
                    do {
                        let c = try ControlClient(path: socket)
                        #expect(try c.nextReply(timeout: 5)?.kind == .version)
                        #expect(try c.nextReply(timeout: 5)?.kind == .readers)
                        return c
                    } catch { last = error; usleep(50_000) }
                }
                throw last!
            }

            func stop() {
                if process.pid > 0 { kill(process.pid, SIGTERM) }
                _ = Background.wait(seconds: 10) { !process.running }
            }
        }

        func startDaemon(_ testbed: UdevTestbed, directory: String, extra: [String] = [], environment: [String: String] = [:]) throws -> Daemon {
            let socket = directory + "/posmini.sock"
            let process = try Background(["--socket", socket, "--state-directory", directory, "--test-key", "--log-level", "debug"] + extra,
                                         environment: environment.merging(["UMOCKDEV_DIR": testbed.root]) { a, _ in a },
                                         directory: directory, prefix: ["umockdev-wrapper"])
            return Daemon(process: process, socket: socket)
        }

        /// The next READER message about `id` (others skipped), within `timeout`.
        func nextReader(_ client: ControlClient, id: String, timeout: Double = 5) throws -> Reply? {
            let deadline = monotonicNow() + timeout
            while monotonicNow() < deadline {
                guard let m = try client.nextReply(timeout: deadline - monotonicNow()) else { return nil }
                if m.kind == .reader && m["id"]?.stringValue == id { return m }
            }
            return nil
        }

        @Test("a marked card is a reader once udev has initialized it (add, then change); remove makes it absent; an unmarked card and a modem are left alone; a card present at start is found by enumeration")
        func plugAndRemove() throws {
            let directory = try temporaryDirectory()
            let testbed = try UdevTestbed(directory: directory)
            // Present before the daemon starts: the desktop's card, a modem and a reader.
            try testbed.plug("card0", number: 0, id: "PCH", properties: ["ID_PATH": "pci-0000:00:1f.3"])
            try testbed.plug("card3", number: 3, id: "Modem", properties: ["POSMINI_READER": "1", "SOUND_CLASS": "modem"])
            try testbed.plug("card2", number: 2, id: "Early", properties: ["POSMINI_READER": "1", "ID_PATH": "pci-0000:00:14.0-usb-0:3:1.0"])
            let daemon = try startDaemon(testbed, directory: directory)
            defer { daemon.stop() }
            let watcher = try daemon.greeted()
            try watcher.send(["cmd": "watch", "enable": true])
            #expect(try watcher.nextReply(timeout: 5)?.kind == .watch)
            try watcher.send(["cmd": "status"])
            let status = try #require(try watcher.nextReply(timeout: 5))
            let early = try #require(status["readers"]?.arrayValue?.first { $0["id"] == "pci-0000:00:14.0-usb-0:3:1.0" }, "\(status.text)")
            #expect(early["present"] == true)
            #expect(early["source"] == "udev")
            #expect(early["jack"] == "none")
            #expect(early["device"] == "hw:2,0")
            // umockdev has no ALSA behind its cards: the capture failure is on the reader.
            #expect(early["capturing"] == false)
            #expect(early["error"]?.stringValue?.contains("hw:2,0") == true, "\(early.text)")
            #expect(status["readers"]?.arrayValue?.count == 1, "only the marked card: \(status.text)")

            // Plugged while running, in udev's real order.
            let path = try testbed.plug("card1", number: 1, id: "Reader", properties: Self.readerProperties, initialize: false)
            usleep(500_000)
            try watcher.send(["cmd": "status"])
            let before = try #require(try watcher.nextReply(timeout: 5))
            #expect(before["readers"]?.arrayValue?.contains { $0["id"]?.stringValue == Self.readerID } == false,
                    "no reader before SOUND_INITIALIZED: \(before.text)")
            try testbed.initialized(path)
            let appeared = try #require(try nextReader(watcher, id: Self.readerID))
            #expect(appeared["present"] == true)
            #expect(appeared["name"] == "Acme Reader")
            #expect(appeared["udev_path"] == "pci-0000:00:14.0-usb-0:2:1.0")
            #expect(appeared["serial"] == "Acme_Reader_0001")
            #expect(appeared["card"] == "Reader")
            // The arm is refused with the reason while the reader cannot capture: once the
            // daemon has tried to open it and said so on the reader (an event, not a delay).
            var failing = appeared
            while failing["error"] == nil, let m = try nextReader(watcher, id: Self.readerID) { failing = m }
            #expect(failing["error"] != nil, "\(failing.text)")
            let pos = try daemon.greeted()
            try pos.send(["cmd": "arm", "reader": .string(Self.readerID)])
            let refused = try #require(try pos.nextReply(timeout: 5))
            #expect(refused["code"] == "reader_unavailable", "\(refused.text)")
            try testbed.unplug(path)
            var gone: Reply?
            while let m = try nextReader(watcher, id: Self.readerID) {
                if m["present"] == false { gone = m; break }
            }
            #expect(gone != nil)
            // Still serving.
            try pos.send(["cmd": "status"])
            #expect(try pos.nextReply(timeout: 5)?.kind == .status)
            #expect(daemon.process.running)
            let log = readText(daemon.process.stderr)
            #expect(log.contains("sound card PCH is not a reader"), "\(log)")
            #expect(!log.contains("Modem"), "a modem is never looked at: \(log)")
        }

        @Test("a configured built-in card (hw:CARD=PCH) is known before it appears, found through udev, its jack followed (here: no controls to read, said on the reader), and absent when removed")
        func configuredCard() throws {
            let directory = try temporaryDirectory()
            let testbed = try UdevTestbed(directory: directory)
            let daemon = try startDaemon(testbed, directory: directory, extra: ["--device", "hw:CARD=PCH,DEV=0"])
            defer { daemon.stop() }
            let watcher = try daemon.greeted()
            try watcher.send(["cmd": "status"])
            let status = try #require(try watcher.nextReply(timeout: 5))
            let waiting = try #require(status["readers"]?.arrayValue?.first, "\(status.text)")
            #expect(waiting["id"] == "hw:CARD=PCH,DEV=0")
            #expect(waiting["present"] == false)
            #expect(waiting["source"] == "config")
            try watcher.send(["cmd": "watch", "enable": true])
            #expect(try watcher.nextReply(timeout: 5)?.kind == .watch)
            // Another card is not it.
            try testbed.plug("card1", number: 1, id: "Device", properties: ["ID_PATH": "pci-0000:00:14.0-usb-0:4:1.0"])
            let path = try testbed.plug("card0", number: 0, id: "PCH", properties: ["ID_PATH": "pci-0000:00:1f.3"])
            var found: Reply?
            while let m = try nextReader(watcher, id: "hw:CARD=PCH,DEV=0") {
                if m["present"] == true && m["error"] != nil { found = m; break }
            }
            let reader = try #require(found)
            #expect(reader["jack"] == "none")
            #expect(reader["card"] == "PCH")
            #expect(reader["udev_path"] == "pci-0000:00:1f.3")
            // Opened by the card's number, not looked up by id again.
            #expect(reader["error"]?.stringValue?.contains("hw:CARD=0,DEV=0") == true, "\(reader.text)")
            let log = readText(daemon.process.stderr)
            #expect(log.contains("no jack detection"), "\(log)")
            #expect(log.contains("sound card Device is not a reader"), "\(log)")
            try testbed.unplug(path)
            var gone = false
            while let m = try nextReader(watcher, id: "hw:CARD=PCH,DEV=0") {
                if m["present"] == false { gone = true; break }
            }
            #expect(gone)
            #expect(daemon.process.running)
        }

        /// A slow Track 1 swipe (5 cm/s, about 1.7 s) `delay` seconds into the recording, then silence.
        func slowSwipe(delay: Double, directory: String) throws -> String {
            var audio = AudioPath(sampleRate: 44_100)
            audio.snr = 35
            audio.leadingSilence = delay
            audio.trailingSilence = 0.5
            let scenario = SwipeScenario(tracks: [try StripeTrack(text: Self.track1, format: .track1)],
                                         motion: Motion(speed: .constant(50)), audio: audio, seed: 3)
            let samples = SwipeSynthesizer.render(scenario).channels[0] + [Float](repeating: 0, count: 44_100 * 30)
            let path = directory + "/slow.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: path)
            return path
        }

        @Test("removal mid-swipe: the armed client gets READER_REMOVED and no card; replugged, the same reader (still bound) reads the card")
        func removalMidSwipe() throws {
            let directory = try temporaryDirectory()
            let testbed = try UdevTestbed(directory: directory)
            let delay = 2.0
            let recording = try slowSwipe(delay: delay, directory: directory)
            // The test seam: readers found through udev replay this recording instead of ALSA;
            // the first play stops for good in the middle of the swipe (the swipe at 5 cm/s takes
            // about 1.7 s from `delay`), as a reader pulled out mid-swipe does.
            let daemon = try startDaemon(testbed, directory: directory,
                                         extra: ["--test-udev-replay", recording, "--test-udev-replay-stop-at", String(delay + 0.85)])
            defer { daemon.stop() }
            let pos = try daemon.greeted()
            try pos.send(["cmd": "watch", "enable": true])
            #expect(try pos.nextReply(timeout: 5)?.kind == .watch)
            let path = try testbed.plug("card1", number: 1, id: "Reader", properties: Self.readerProperties)
            var capturing = false
            while let m = try nextReader(pos, id: Self.readerID) {
                if m["capturing"] == true { capturing = true; break }
            }
            #expect(capturing)
            try pos.send(["cmd": "bind", "reader": .string(Self.readerID)])
            try pos.armed(["cmd": "arm", "reader": .string(Self.readerID), "timeout_s": 60])
            // Pulled out once the play has stopped mid-swipe (the daemon says so: an event, not
            // a time), so the swipe is cut on any machine.
            #expect(Background.wait(seconds: 30) { readText(daemon.process.stderr).contains("udev replay of reader") },
                    "the replay never reached the middle of the swipe")
            try testbed.unplug(path)
            var ending: Reply?
            while let m = try pos.nextReply(timeout: 5) {
                #expect(m.kind != .card)
                if m.kind == .readerRemoved { ending = m; break }
            }
            #expect(ending?["reader"]?.stringValue == Self.readerID)
            // Pulled out before the swipe was over: nothing was read on that insertion.
            let firstInsertion = readText(daemon.process.stderr).split(separator: "removed").first ?? ""
            #expect(!firstInsertion.contains("swipe read"), "\(firstInsertion)")
            try pos.send(["cmd": "arm", "reader": .string(Self.readerID)])
            var refusal: Reply?
            while let m = try pos.nextReply(timeout: 5) {
                if m.kind == .error { refusal = m; break }
            }
            #expect(refusal?["code"] == "unknown_reader")

            // The same reader in the same port: same id, still bound, reads.
            try testbed.plug("card1", number: 1, id: "Reader", properties: Self.readerProperties)
            var back: Reply?
            while let m = try nextReader(pos, id: Self.readerID) {
                if m["capturing"] == true { back = m; break }
            }
            #expect(back?["bound"] == true)
            try pos.armed(["cmd": "arm", "reader": .string(Self.readerID), "timeout_s": 60])
            var card: Reply?
            let deadline = monotonicNow() + 15
            while monotonicNow() < deadline, let m = try pos.nextReply(timeout: deadline - monotonicNow()) {
                if m.kind == .card { card = m; break }
            }
            #expect(card?["masked_pan"] == "411111******1111")
            #expect(card?["reader"]?.stringValue == Self.readerID)
            let log = readText(daemon.process.stderr)
            #expect(!log.contains("4111111111111111"))
        }
    }
}
