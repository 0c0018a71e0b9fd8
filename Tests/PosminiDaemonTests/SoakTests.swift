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

extension ProcessSuites {
    /// The daemon over a long stretch of audio: a minute of swipes over noise, played
    /// POSMINI_SOAK_MINUTES times over (10 in `make test`, 60 in `make soak`) as fast as it decodes,
    /// with a watcher and a POS app arming card after card.
    @Suite("soak")
    struct SoakTests: CommandTesting {
        static let swipesPerMinute = 15

        /// A minute: a swipe every 4 s (Tracks 1 and 2, both directions, 20-60 cm/s) over a
        /// steady noise bed at about -60 dBFS.
        func minute(_ directory: String) throws -> String {
            var samples: [Float] = []
            for k in 0..<Self.swipesPerMinute {
                var audio = AudioPath(sampleRate: 44_100)
                audio.snr = 80
                audio.leadingSilence = 1.5
                let text = k % 2 == 0 ? track1Text : track2Text
                let track = try StripeTrack(text: text, format: k % 2 == 0 ? .track1 : .track2)
                let scenario = SwipeScenario(tracks: [track],
                                             motion: Motion(speed: .constant(200 + Double(k % 5) * 100), direction: k % 3 == 0 ? .reverse : .forward),
                                             audio: audio, seed: UInt64(100 + k))
                let rendered = SwipeSynthesizer.render(scenario).channels[0]
                samples += rendered + [Float](repeating: 0, count: max(0, 4 * 44_100 - rendered.count))
            }
            var random = TestRandom(seed: 23)
            for k in samples.indices { samples[k] += 0.0017 * (Float(random.next() >> 40) / Float(1 << 24) * 2 - 1) }
            let path = directory + "/minute.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: path)
            return path
        }

        func status(_ client: ControlClient) throws -> JSONValue? {
            try client.send(["cmd": "status"])
            while let m = try client.next(timeout: 5) { if m["class"] == "STATUS" { return m } }
            return nil
        }

        @Test("soak: every swipe read; heap, descriptors and threads back to their idle figures; resident memory flat")
        func soak() throws {
            let minutes = getenv("POSMINI_SOAK_MINUTES").flatMap { Int(String(cString: $0)) } ?? 10
            let directory = try temporaryDirectory()
            let recording = try minute(directory)
            let socket = directory + "/posmini.sock"
            // Idle figures first: the same daemon with no reader.
            let idle = try Background(["--socket", socket, "--state-directory", directory, "--test-key"], environment: [:], directory: directory)
            var baseline: JSONValue?
            for _ in 0..<100 where baseline == nil {
                if let c = try? ControlClient(path: socket) { _ = try c.next(timeout: 5); _ = try c.next(timeout: 5); baseline = try status(c) } else { usleep(50_000) }
            }
            kill(idle.pid, SIGTERM)
            _ = Background.wait(seconds: 10) { !idle.running }
            let idleProcess = try #require(baseline?["process"])

            let started = monotonicNow()
            let daemon = try Background(["--replay", recording, "--replay-fast", "--replay-repeat", String(minutes), "--socket", socket,
                                         "--state-directory", directory, "--test-key"], environment: [:], directory: directory)
            defer {
                kill(daemon.pid, SIGTERM)
                _ = Background.wait(seconds: 10) { !daemon.running }
            }
            var watcher: ControlClient?
            for _ in 0..<100 where watcher == nil { watcher = try? ControlClient(path: socket); if watcher == nil { usleep(20_000) } }
            let watch = try #require(watcher)
            let pos = try ControlClient(path: socket)
            try watch.send(["cmd": "watch", "enable": true])
            var cards = 0
            // The POS app arms again after each card; the replay ends by itself.
            try? pos.send(["cmd": "arm", "timeout_s": 120])
            var ended = false
            let deadline = monotonicNow() + 60 + Double(minutes) * 30
            while !ended && monotonicNow() < deadline {
                while let m = try? pos.next(timeout: 0.01) {
                    if m["class"] == "CARD" { cards += 1; try? pos.send(["cmd": "arm", "timeout_s": 120]) }
                }
                while let m = try? watch.next(timeout: 0.05) {
                    if m["class"] == "READER" && m["present"] == false { ended = true }
                }
            }
            let elapsed = monotonicNow() - started
            #expect(ended, "the replay did not end in time")
            usleep(300_000)
            let final = try #require(try status(watch))
            let expected = Self.swipesPerMinute * minutes
            #expect(final["counters"]?["swipes"]?.numberValue == Double(expected), "\(final.text)")
            #expect(final["counters"]?["good_reads"]?.numberValue == Double(expected), "every swipe read: \(final.text)")
            #expect(final["counters"]?["dropped_samples"] == 0)
            #expect(cards > 0)
            let end = try #require(final["process"])
            // Back to idle: the reader's session and its threads are gone (the concurrency pool's
            // threads come and go, so not more than idle rather than equal).
            #expect((end["threads"]?.numberValue ?? 99) <= (idleProcess["threads"]?.numberValue ?? 0), "threads \(idleProcess) → \(end)")
            // Two clients now, none at the idle reading but the one asking.
            #expect((end["fds"]?.numberValue ?? 0) <= (idleProcess["fds"]?.numberValue ?? 0) + 1, "descriptors \(idleProcess) → \(end)")
            let heapGrowth = (end["heap_bytes"]?.numberValue ?? 0) - (idleProcess["heap_bytes"]?.numberValue ?? 0)
            #expect(heapGrowth < 1_048_576, "heap grew \(Int(heapGrowth)) bytes over the soak")
            let rssGrowth = (end["rss_kib"]?.numberValue ?? 0) - (idleProcess["rss_kib"]?.numberValue ?? 0)
            print("soak: \(minutes) min of audio (\(expected) swipes, all read, \(cards) cards) in \(Int(elapsed)) s; idle \(idleProcess.text), after \(end.text); heap +\(Int(heapGrowth)) B, RSS +\(Int(rssGrowth)) KiB")
        }
    }
}
