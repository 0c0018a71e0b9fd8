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

/// Faults the key counter must survive, with real processes: a state directory that is full or
/// read-only when a card's counter must be saved (a tmpfs in a private mount namespace: tests run
/// as root, which file modes do not stop), and SIGKILL at random moments while cards are read.
extension ProcessSuites {
    @Suite("faults: the counter")
    struct FaultTests: CommandTesting {
        /// A recording of `swipes` Track 1 swipes, `gap` seconds apart, after `delay`, over a
        /// steady noise bed (a sound card's input is never digital silence).
        func recording(_ directory: String, swipes: Int, delay: Double = 0.8, gap: Double = 0.35) throws -> String {
            try DaemonTests().replayFile(delay: delay, swipes: swipes, gap: gap, directory: directory, steadyNoise: true)
        }

        /// posminid in a mount namespace of its own with a tmpfs of `size` on its state directory.
        func startInNamespace(_ directory: String, replay: String, size: String = "256k") throws -> (Background, String, String) {
            let state = directory + "/state", socket = directory + "/posmini.sock"
            mkdir(state, 0o700)
            let script = "mount -t tmpfs -o size=\(size),mode=0700 tmpfs \(shellQuoted(state)) && exec \"$0\" \"$@\""
            let process = try Background(["--replay", replay, "--socket", socket, "--state-directory", state, "--test-key"],
                                         environment: [:], directory: directory, prefix: ["unshare", "-m", "sh", "-c", script])
            return (process, state, socket)
        }

        func connect(_ socket: String) throws -> ControlClient {
            var last: (any Error)?
            for _ in 0..<100 {
                do {
                    let c = try ControlClient(path: socket)
                    _ = try c.nextReply(timeout: 5)
                    _ = try c.nextReply(timeout: 5)
                    return c
                } catch { last = error; usleep(50_000) }
            }
            throw last!
        }

        /// Arms and waits for the arm's ending (CARD, ERROR, …), skipping SWIPE_FAILED.
        func armAndWait(_ client: ControlClient, timeout: Double = 15) throws -> Reply? {
            try client.send(["cmd": "arm", "timeout_s": 60])
            let deadline = monotonicNow() + timeout
            while monotonicNow() < deadline, let m = try client.nextReply(timeout: deadline - monotonicNow()) {
                if ["CARD", "ERROR", "TIMEOUT", "READER_REMOVED", "CANCELLED"].contains(m.messageClass) { return m }
            }
            return nil
        }

        func counter(_ card: Reply?) -> UInt64? {
            guard let ksn = card?["encrypted"]?["ksn"]?.stringValue else { return nil }
            return UInt64(ksn.suffix(8), radix: 16)
        }

        func inNamespace(_ pid: Int32, _ command: String) -> Int32 {
            let status = system("nsenter -t \(pid) -m sh -c \(shellQuoted(command)) >/dev/null 2>&1")
            return (status >> 8) & 0xFF
        }

        @Test("a read-only or full state directory when a card's counter must be saved: the card is refused with ERROR encryption_failed, never published; once it can write again, cards go on with a higher counter")
        func stateDirectory() throws {
            let directory = try temporaryDirectory()
            let replay = try recording(directory, swipes: 6, delay: 0.8, gap: 1.2)
            let (daemon, state, socket) = try startInNamespace(directory, replay: replay)
            defer { daemon.stop() }
            let pos = try connect(socket)
            let first = try armAndWait(pos)
            #expect(first?.kind == .card, "\(first?.text ?? "nothing") \(readText(daemon.stderr))")
            let firstCounter = try #require(counter(first))

            // Read-only: the next card cannot reserve its counter.
            #expect(inNamespace(daemon.pid, "mount -o remount,ro \(state)") == 0)
            let refused = try armAndWait(pos)
            #expect(refused?.kind == .error, "\(refused?.text ?? "nothing")")
            #expect(refused?["code"] == "encryption_failed")
            #expect(refused?.text.contains("encrypted") == false, "no cryptogram leaves")
            #expect(inNamespace(daemon.pid, "mount -o remount,rw \(state)") == 0)
            let after = try armAndWait(pos)
            #expect(after?.kind == .card, "\(after?.text ?? "nothing")")
            let afterCounter = try #require(counter(after))
            #expect(afterCounter > firstCounter)

            // Full: fill the tmpfs, then a card.
            _ = inNamespace(daemon.pid, "dd if=/dev/zero of=\(state)/fill bs=4k 2>/dev/null; sync")
            let full = try armAndWait(pos)
            #expect(full?.kind == .error, "\(full?.text ?? "nothing")")
            #expect(full?["code"] == "encryption_failed")
            _ = inNamespace(daemon.pid, "rm -f \(state)/fill")
            let last = try armAndWait(pos)
            #expect(last?.kind == .card, "\(last?.text ?? "nothing")")
            #expect((counter(last) ?? 0) > afterCounter)
            // Still answering, nothing lost: the log says why the cards were refused.
            try pos.send(["cmd": "status"])
            #expect(try pos.nextReply(timeout: 5)?.kind == .status)
            #expect(readText(daemon.stderr).contains("counter"), "\(readText(daemon.stderr))")
            #expect(!readText(daemon.stderr).contains("4111111111111111"))
        }

        /// Kills the daemon with SIGKILL at random moments while a POS app takes card after card,
        /// restarting it each time, until `cards` cards were published; returns their counters.
        func killLoop(cards wanted: Int, seed: UInt64) throws -> (counters: [UInt64], kills: Int) {
            let directory = try temporaryDirectory()
            let replay = try recording(directory, swipes: 12, delay: 0.6, gap: 0.25)
            let socket = directory + "/posmini.sock"
            var random = TestRandom(seed: seed)
            var counters: [UInt64] = []
            var kills = 0
            let deadline = monotonicNow() + Double(wanted) * 3 + 60
            while counters.count < wanted && monotonicNow() < deadline {
                unlink(socket)
                let daemon = try Background(["--replay", replay, "--socket", socket, "--state-directory", directory, "--test-key"],
                                            environment: [:], directory: directory)
                // Killed somewhere in the first few seconds: during start-up, between swipes,
                // between the counter's reservation and the card, or while a card is written.
                let lifetime = 0.2 + Double(random.next() % 4_000) / 1_000
                let killAt = monotonicNow() + lifetime
                if let pos = try? connect(socket) {
                    while monotonicNow() < killAt && counters.count < wanted {
                        try? pos.send(["cmd": "arm", "timeout_s": 60])
                        while monotonicNow() < killAt, let m = try? pos.nextReply(timeout: max(0.01, killAt - monotonicNow())) {
                            if m.kind == .card {
                                if let c = counter(m) { counters.append(c) }
                                break
                            }
                        }
                    }
                }
                kill(daemon.pid, SIGKILL)
                kills += 1
                _ = Background.wait(seconds: 10) { !daemon.running }
            }
            return (counters, kills)
        }

        @Test("SIGKILL at random moments while cards are read: no KSN is ever published twice, and the counter only moves forward (POSMINI_CRASH_CARDS cards, 30 by default; `make test-faults` runs 200)")
        func killedAtRandom() throws {
            let wanted = getenv("POSMINI_CRASH_CARDS").flatMap { Int(String(cString: $0)) } ?? 30
            let (counters, kills) = try killLoop(cards: wanted, seed: 0x5EED)
            #expect(counters.count >= wanted, "only \(counters.count) cards in time (\(kills) kills)")
            #expect(Set(counters).count == counters.count, "a KSN was published twice: \(counters)")
            #expect(zip(counters, counters.dropFirst()).allSatisfy { $0 < $1 }, "the counter went back: \(counters)")
            #expect(kills >= 5)
            print("crash safety: \(counters.count) cards, \(kills) SIGKILLs, counters \(counters.first ?? 0)…\(counters.last ?? 0), none reused")
        }
    }
}

extension ProcessSuites.FaultTests {
    /// Starts a daemon replaying a slow swipe `delay` s in; returns it, a watching POS client
    /// with the reader armed, and when capture started.
    func armedBeforeSlowSwipe(_ directory: String, delay: Double) throws -> (Background, ControlClient, Double) {
        let recording = try ProcessSuites.HotplugTests().slowSwipe(delay: delay, directory: directory)
        let socket = directory + "/posmini.sock"
        let config = directory + "/posminid.conf"
        write(Array("arm_timeout = 60\n".utf8), to: config)
        let daemon = try Background(["--replay", recording, "--socket", socket, "--state-directory", directory, "--test-key",
                                     "--config", config], environment: [:], directory: directory)
        let pos = try connect(socket)
        try pos.armed(["cmd": "arm", "timeout_s": 60])
        let capturing = Background.wait(seconds: 10) { readText(daemon.stderr).contains("reader replay capturing") }
        #expect(capturing)
        return (daemon, pos, monotonicNow())
    }

    @Test("SIGHUP in the middle of a swipe: the configuration reloads and the card still arrives")
    func hangupMidSwipe() throws {
        let directory = try temporaryDirectory()
        let (daemon, pos, started) = try armedBeforeSlowSwipe(directory, delay: 2)
        defer { daemon.stop() }
        let middle = started + 2 + 0.5
        if middle > monotonicNow() { usleep(UInt32((middle - monotonicNow()) * 1_000_000)) }
        kill(daemon.pid, SIGHUP)
        var card: Reply?
        while let m = try pos.nextReply(timeout: 10) { if m.kind == .card { card = m; break } }
        #expect(card?["masked_pan"] == "411111******1111", "\(readText(daemon.stderr))")
        #expect(readText(daemon.stderr).contains("configuration reloaded"))
    }

    @Test("SIGTERM in the middle of a swipe: the armed client hears CANCELLED, nothing is published, the daemon stops cleanly and the next start's counter is unused")
    func terminateMidSwipe() throws {
        let directory = try temporaryDirectory()
        let (daemon, pos, started) = try armedBeforeSlowSwipe(directory, delay: 2)
        let middle = started + 2 + 0.5
        if middle > monotonicNow() { usleep(UInt32((middle - monotonicNow()) * 1_000_000)) }
        kill(daemon.pid, SIGTERM)
        var ending: Reply?
        while let m = try? pos.nextReply(timeout: 5) {
            #expect(m.kind != .card)
            if m.kind == .cancelled { ending = m; break }
        }
        #expect(ending != nil)
        #expect(Background.wait(seconds: 10) { !daemon.running })
        #expect(readText(daemon.stderr).contains("INFO: stopped"), "\(readText(daemon.stderr))")
        // Started again: the first card's counter is the first value (nothing was reserved).
        let (again, client, _) = try armedBeforeSlowSwipe(directory, delay: 0.5)
        defer {
            kill(again.pid, SIGTERM)
            _ = Background.wait(seconds: 10) { !again.running }
        }
        var card: Reply?
        while let m = try client.nextReply(timeout: 15) { if m.kind == .card { card = m; break } }
        #expect(counter(card) == 1, "\(card?.text ?? "no card")")
    }
}
