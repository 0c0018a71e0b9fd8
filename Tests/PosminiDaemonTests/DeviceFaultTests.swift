import PosminiClient
import PosminiProtocol
import Testing
import AudioFile
import Magstripe
import SwipeSynth
import PosminiDaemon
import TestSupport
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// Faults of the capture device under a running daemon, for real: the daemon captures through
/// alsa-lib's `pulse` device from a PulseAudio server the test starts (a null sink's monitor,
/// paced like a sound card), and the test plays swipes into it, kills the server mid-swipe,
/// starts it again, and stops the daemon's process again and again while audio flows.
extension ProcessSuites {
    @Suite("faults: the capture device")
    struct DeviceFaultTests: CommandTesting {
        /// Noise, a Track 1 swipe at `speed` mm/s `lead` seconds in, noise for `tail` seconds:
        /// one steady noise bed throughout (a sound card's input is never digital silence).
        func recording(_ path: String, lead: Double, speed: Double, tail: Double) throws {
            var audio = AudioPath(sampleRate: 44_100)
            audio.snr = 80
            audio.leadingSilence = lead
            audio.trailingSilence = tail
            let scenario = SwipeScenario(tracks: [try StripeTrack(text: Self.track1, format: .track1)],
                                         motion: Motion(speed: .constant(speed)), audio: audio, seed: 5)
            var samples = SwipeSynthesizer.render(scenario).channels[0]
            var random = TestRandom(seed: 23)
            for k in samples.indices { samples[k] += 0.0017 * (Float(random.next() >> 40) / Float(1 << 24) * 2 - 1) }
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: path)
        }

        func status(_ client: ControlClient) throws -> Reply? {
            try client.send(["cmd": "status"])
            while let m = try client.nextReply(timeout: 10) { if m.kind == .status { return m } }
            return nil
        }

        /// The `pulse` reader as STATUS shows it.
        func reader(_ client: ControlClient) throws -> JSONValue? {
            try status(client)?["readers"]?.arrayValue?.first { $0["id"] == "pulse" }
        }

        func waitCapturing(_ client: ControlClient, seconds: Double) throws -> Bool {
            let deadline = monotonicNow() + seconds
            while monotonicNow() < deadline {
                if try reader(client)?["capturing"] == true { return true }
                usleep(100_000)
            }
            return false
        }

        /// Plays `wav` into the server's sink in the background (paplay exits when it is done
        /// or when the server goes away).
        func playInBackground(_ server: PulseServer, _ wav: String) {
            _ = system("env XDG_RUNTIME_DIR='\(server.runtime)' PULSE_SERVER='\(server.env["PULSE_SERVER"]!)' paplay --device=reader '\(wav)' >/dev/null 2>&1 &")
        }

        /// The names of a process's threads.
        func threadNames(_ pid: Int32) -> [String] {
            FileBytes.entries(ofDirectory: "/proc/\(pid)/task").map {
                String(readText("/proc/\(pid)/task/\($0)/comm").split(separator: "\n").first ?? "")
            }
        }

        func arm(_ client: ControlClient) throws {
            try client.armed(["cmd": "arm", "timeout_s": 60])
        }

        /// The arm's ending (CARD, READER_REMOVED, …), skipping SWIPE_FAILED and watch events.
        func ending(_ client: ControlClient, timeout: Double) throws -> Reply? {
            let deadline = monotonicNow() + timeout
            while monotonicNow() < deadline, let m = try client.nextReply(timeout: deadline - monotonicNow()) {
                if ["CARD", "ERROR", "TIMEOUT", "READER_REMOVED", "CANCELLED"].contains(m.messageClass) { return m }
            }
            return nil
        }

        @Test("the sound server dies mid-swipe under the daemon: READER_REMOVED, no card, the reader shows why; back up, the daemon reopens the device by itself and reads; a storm of stalls (SIGSTOP) while audio flows: the next swipe reads; descriptors, threads and heap back to their figures")
        func deviceVanishesAndStalls() throws {
            let directory = try temporaryDirectory()
            var server: PulseServer? = try PulseServer(directory: directory)
            defer { server?.kill() }
            let pulse = try #require(server)
            let slow = directory + "/slow.wav", normal = directory + "/normal.wav", stalled = directory + "/stalled.wav"
            try recording(slow, lead: 1.5, speed: 60, tail: 1)
            try recording(normal, lead: 1.5, speed: 300, tail: 1)
            try recording(stalled, lead: 6, speed: 300, tail: 1)
            let socket = directory + "/posmini.sock"
            var env = pulse.env
            env["PULSE_SOURCE"] = "reader.monitor"
            let daemon = try Background(["--device", "pulse", "--socket", socket, "--state-directory", directory, "--test-key"],
                                        environment: env, directory: directory)
            defer {
                kill(daemon.pid, SIGCONT)
                kill(daemon.pid, SIGTERM)
                _ = Background.wait(seconds: 10) { !daemon.running }
            }
            let admin = try FaultTests().connect(socket)
            #expect(try waitCapturing(admin, seconds: 15), "\(readText(daemon.stderr))")
            let pos = try FaultTests().connect(socket)

            // A first card, so that what follows starts from a daemon that has read one.
            try arm(pos)
            playInBackground(pulse, normal)
            let first = try ending(pos, timeout: 15)
            #expect(first?.kind == .card, "\(first?.text ?? "nothing") \(readText(daemon.stderr))")
            usleep(1_500_000)
            let before = try #require(try status(admin)?["process"])

            // The server dies halfway through a slow swipe (1.5 s in, 1.4 s long).
            try arm(pos)
            playInBackground(pulse, slow)
            usleep(2_300_000)
            pulse.kill()
            server = nil
            let removed = try ending(pos, timeout: 10)
            #expect(removed?.kind == .readerRemoved, "\(removed?.text ?? "nothing")")
            #expect(removed?["message"]?.stringValue?.hasPrefix("capture ended") == true, "\(removed?.text ?? "nothing")")
            let gone = try #require(try reader(admin))
            #expect(gone["present"] == false && gone["capturing"] == false, "\(gone.text)")
            #expect(gone["error"]?.stringValue?.contains("capture") == true, "\(gone.text)")
            try pos.send(["cmd": "arm", "timeout_s": 60])
            #expect(try pos.nextReply(timeout: 5)?.kind == .error, "an absent reader cannot be armed")

            // The server comes back: the daemon reopens the device on its own and reads.
            server = try PulseServer(directory: directory)
            let again = try #require(server)
            #expect(try waitCapturing(admin, seconds: 40), "\(readText(daemon.stderr).suffix(1_500))")
            #expect(readText(daemon.stderr).contains("reader pulse: capturing again"))
            try arm(pos)
            playInBackground(again, normal)
            let card = try ending(pos, timeout: 15)
            #expect(card?.kind == .card, "\(card?.text ?? "nothing")")
            #expect(card?["encrypted"]?["ksn"] != first?["encrypted"]?["ksn"])

            // A consumer that stalls: the whole daemon stopped for 0.3 s at a time, fifteen times
            // over, while 6 s of audio flow; the swipe after the storm still reads.
            try arm(pos)
            playInBackground(again, stalled)
            usleep(300_000)
            for _ in 0..<15 {
                kill(daemon.pid, SIGSTOP)
                usleep(300_000)
                kill(daemon.pid, SIGCONT)
                usleep(30_000)
            }
            let afterStorm = try ending(pos, timeout: 15)
            #expect(afterStorm?.kind == .card, "\(afterStorm?.text ?? "nothing") \(readText(daemon.stderr).suffix(1_500))")
            let statistics = try reader(admin)
            usleep(1_500_000)
            let after = try #require(try status(admin)?["process"])
            #expect(after["fds"] == before["fds"], "descriptors \(before.text) → \(after.text)")
            // Dispatch's idle worker threads come and go; the daemon's own must not pile up.
            #expect((after["threads"]?.numberValue ?? 99) <= (before["threads"]?.numberValue ?? 0), "threads \(before.text) → \(after.text)")
            #expect(threadNames(daemon.pid).filter { $0.hasPrefix("posmini-") }.sorted() == ["posmini-capture", "posmini-decode", "posmini-devices"],
                    "\(threadNames(daemon.pid))")
            let growth = (after["heap_bytes"]?.numberValue ?? 0) - (before["heap_bytes"]?.numberValue ?? 0)
            #expect(growth < 262_144, "heap grew \(Int(growth)) bytes")
            #expect(!readText(daemon.stderr).contains("4111111111111111"))
            print("device faults: server killed mid-swipe, reopened; 15 stalls; reader \(statistics?.text ?? "?"); "
                + "descriptors \(before["fds"]?.text ?? "?") → \(after["fds"]?.text ?? "?"), threads \(before["threads"]?.text ?? "?") → \(after["threads"]?.text ?? "?"), heap +\(Int(growth)) B")
        }
    }
}
