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

        func status(_ client: ControlClient) throws -> Reply? {
            try client.send(["cmd": "status"])
            while let m = try client.nextReply(timeout: 5) { if m.kind == .status { return m } }
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
            var baseline: Reply?
            for _ in 0..<100 where baseline == nil {
                if let c = try? ControlClient(path: socket) {
                    _ = try c.nextReply(timeout: 5)
                    _ = try c.nextReply(timeout: 5)
                    // The socket serves before start-up has quite finished (the service group's
                    // signal sources): the figures a second later.
                    usleep(1_000_000)
                    baseline = try status(c)
                } else { usleep(50_000) }
            }
            kill(idle.pid, SIGTERM)
            _ = Background.wait(seconds: 10) { !idle.running }
            let idleProcess = try #require(baseline?["process"])

            let started = monotonicNow()
            // Flat out, but only while the POS app has the reader armed (the daemon's test seam):
            // the replay cannot outrun the client, however fast or slow the machine, so every
            // swipe's card reaches it.
            let daemon = try Background(["--replay", recording, "--replay-fast", "--replay-while-armed", "--replay-repeat", String(minutes), "--socket", socket,
                                         "--state-directory", directory, "--test-key"], environment: [:], directory: directory)
            defer { daemon.stop() }
            var watcher: ControlClient?
            for _ in 0..<100 where watcher == nil { watcher = try? ControlClient(path: socket); if watcher == nil { usleep(20_000) } }
            let watch = try #require(watcher)
            let pos = try ControlClient(path: socket)
            try watch.send(["cmd": "watch", "enable": true])
            var cards = 0
            var refused: String?
            // The POS app arms again after each card; the replay ends by itself.
            for _ in 0..<2 { _ = try pos.nextReply(timeout: 10) }
            try pos.send(["cmd": "arm", "timeout_s": 120])
            var ended = false
            // A safety net only: the loop ends on the reader's removal.
            let deadline = monotonicNow() + 60 + Double(minutes) * 30
            while !ended && refused == nil && monotonicNow() < deadline {
                while let m = try? pos.nextReply(timeout: 0.01) {
                    if m.kind == .card { cards += 1; try? pos.send(["cmd": "arm", "timeout_s": 120]) }
                    if m.kind == .error { refused = m.text }
                }
                // A few of the watcher's messages a turn, so the POS app gets its turn too.
                for _ in 0..<16 {
                    guard let m = try? watch.nextReply(timeout: 0.05) else { break }
                    if m.kind == .reader && m["present"] == false { ended = true }
                }
            }
            #expect(refused == nil, "an arm was refused: \(refused ?? "")")
            let elapsed = monotonicNow() - started
            #expect(ended, "the replay did not end in time")
            usleep(300_000)
            let final = try #require(try status(watch))
            let expected = Self.swipesPerMinute * minutes
            #expect(final["counters"]?["swipes"]?.numberValue == Double(expected), "\(final.text)")
            #expect(final["counters"]?["good_reads"]?.numberValue == Double(expected), "every swipe read: \(final.text)")
            #expect(final["counters"]?["dropped_samples"] == 0)
            #expect(final["counters"]?["events_dropped"] == 0)
            // Every card reached the POS app: the replay stood still whenever it was not armed.
            #expect(cards == expected, "\(cards) cards for \(expected) swipes")
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

extension ProcessSuites {
    /// Abuse the daemon survives with nothing leaked: pathological audio for minutes, a thousand
    /// clients that connect and drop, a full house of watchers, a line of a mebibyte.
    @Suite("faults: audio and clients")
    struct AbuseTests: CommandTesting {
        func status(_ client: ControlClient) throws -> Reply? {
            try client.send(["cmd": "status"])
            while let m = try client.nextReply(timeout: 10) { if m.kind == .status { return m } }
            return nil
        }

        func connect(_ socket: String) throws -> ControlClient {
            var last: (any Error)?
            for _ in 0..<200 {
                do { return try ControlClient(path: socket) } catch { last = error; usleep(20_000) }
            }
            throw last!
        }

        @Test("pathological audio (full-scale square waves, DC, full-scale white noise, a clipped sine), a minute of it as fast as it decodes: no card is ever made of it, the daemon answers, the heap comes back")
        func pathologicalAudio() throws {
            let directory = try temporaryDirectory()
            var samples: [Float] = []
            let rate = 44_100.0
            for (k, frequency) in [50.0, 440, 1_000, 2_400, 4_800, 9_000].enumerated() {
                // Square waves at full scale, some with a duty cycle that wanders.
                samples += (0..<Int(rate * 3)).map { i in
                    let phase = (Double(i) * frequency / rate).truncatingRemainder(dividingBy: 1)
                    return phase < (0.5 + 0.2 * sin(Double(i) / rate * Double(k + 1))) ? 1 : -1
                }
            }
            samples += [Float](repeating: 0.9, count: Int(rate * 3)) + [Float](repeating: -1, count: Int(rate * 3))
            var random = TestRandom(seed: 31)
            samples += (0..<Int(rate * 20)).map { _ in Float(random.next() >> 40) / Float(1 << 24) * 2 - 1 }
            samples += (0..<Int(rate * 16)).map { i in Float(max(-1, min(1, 3 * sin(Double(i) * 2 * .pi * 700 / rate)))) }
            let path = directory + "/noise.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: path)
            let socket = directory + "/posmini.sock"
            let daemon = try Background(["--replay", path, "--replay-fast", "--socket", socket,
                                         "--state-directory", directory, "--test-key"], environment: [:], directory: directory)
            defer { daemon.stop() }
            let pos = try connect(socket)
            _ = try pos.nextReply(timeout: 5)
            _ = try pos.nextReply(timeout: 5)
            try pos.send(["cmd": "watch", "enable": true])
            try pos.send(["cmd": "arm", "timeout_s": 120])
            var first: Reply?
            var ended = false
            let deadline = monotonicNow() + 240
            while !ended && monotonicNow() < deadline {
                guard let m = try pos.nextReply(timeout: 1) else { continue }
                #expect(m.kind != .card, "a card made of noise: \(m.text)")
                if m.kind == .reader && m["present"] == false { ended = true }
                if first == nil, m.kind == .watch { first = try status(pos) }
            }
            #expect(ended, "a minute of noise did not end in time")
            usleep(300_000)
            let final = try #require(try status(pos))
            #expect(final["counters"]?["good_reads"] == 0, "\(final.text)")
            let growth = (final["process"]?["heap_bytes"]?.numberValue ?? 0) - (first?["process"]?["heap_bytes"]?.numberValue ?? 0)
            #expect(growth < 1_048_576, "heap grew \(Int(growth)) bytes")
            print("pathological audio: \(Int(final["counters"]?["swipes"]?.numberValue ?? 0)) swipe-like stretches, none read; heap +\(Int(growth)) B")
        }

        @Test("a client arming and cancelling 5 000 times with two-minute timeouts: the heap comes straight back (each arm's timeout used to hold its memory until it ran out), and a short arm still times out on time")
        func armFlood() throws {
            let directory = try temporaryDirectory()
            let silence = directory + "/silence.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [[Float](repeating: 0, count: 44_100 * 60)])), to: silence)
            let socket = directory + "/posmini.sock"
            let daemon = try Background(["--replay", silence, "--socket", socket, "--state-directory", directory, "--test-key"],
                                        environment: [:], directory: directory)
            defer { daemon.stop() }
            let pos = try connect(socket)
            func answer(_ request: JSONValue, _ classes: Set<String>) throws -> Reply? {
                try pos.send(request)
                while let m = try pos.nextReply(timeout: 10) {
                    if let c = m["class"]?.stringValue, classes.contains(c) { return m }
                }
                return nil
            }
            func round(_ n: Int) throws {
                for _ in 0..<n {
                    #expect(try answer(["cmd": "arm", "timeout_s": 120], ["ARMED", "ERROR"])?.kind == .armed)
                    _ = try answer(["cmd": "cancel"], ["CANCELLED", "ERROR"])
                }
            }
            try round(200)
            let before = try #require(try status(pos)?["process"]?["heap_bytes"]?.numberValue)
            try round(5_000)
            let after = try #require(try status(pos)?["process"]?["heap_bytes"]?.numberValue)
            #expect(after - before < 512 * 1024, "the heap grew \(Int(after - before)) bytes over 5 000 arms")
            // Timeouts still end arms, on time, while cancelled ones never fire.
            let armed = monotonicNow()
            #expect(try answer(["cmd": "arm", "timeout_s": 1], ["ARMED"])?.kind == .armed)
            let ended = try answer(["cmd": "status"], ["TIMEOUT"])
            #expect(ended?.kind == .timeout)
            let waited = monotonicNow() - armed
            #expect(waited > 0.95 && waited < 1.5, "TIMEOUT after \(waited) s")
            print("arm flood: heap \(Int(after - before)) B over 5 000 arms and cancels; a 1 s arm timed out after \((waited * 1_000).rounded() / 1_000) s")
        }

        @Test("a thousand clients connecting and dropping, 31 watchers while a 32nd arms, one user's 33rd refused, a MiB without a newline, malformed UTF-8 and JSON, a client that never reads: the daemon answers and its descriptors, threads and heap come back")
        func clients() throws {
            let directory = try temporaryDirectory()
            let replay = try FaultTests().recording(directory, swipes: 40, delay: 2, gap: 1.0)
            let socket = directory + "/posmini.sock"
            // 36 slots: one user (root, all of these clients) may hold 32 of them.
            write(Array("max_clients = 36\n".utf8), to: directory + "/posminid.conf")
            let daemon = try Background(["--replay", replay, "--socket", socket, "--state-directory", directory, "--test-key",
                                         "--config", directory + "/posminid.conf"],
                                        environment: [:], directory: directory)
            defer { daemon.stop() }
            let admin = try connect(socket)
            var hogs = 0
            /// Waits until the daemon counts `n` clients (connections close asynchronously).
            func settle(_ n: Int) throws -> Reply? {
                var last: Reply?
                for _ in 0..<200 {
                    last = try status(admin)
                    if last?["clients"]?.numberValue == Double(n) { return last }
                    usleep(50_000)
                }
                return last
            }
            func greeted() throws -> ControlClient {
                let c = try connect(socket)
                #expect(try c.nextReply(timeout: 5)?.kind == .version)
                return c
            }
            /// One round of abuse; returns the process figures once every client is gone.
            func round() throws -> JSONValue? {
                for k in 0..<1_000 {
                    let c = try connect(socket)
                    if k % 3 == 0 { try? c.send(["cmd": "status"]) }
                    c.close()
                }
                #expect(try settle(1)?["clients"] == 1, "the dropped clients are all gone")
                // A full house: 30 watchers, the admin and a POS app that arms; one more is refused.
                var watchers: [ControlClient] = []
                for _ in 0..<30 {
                    let w = try greeted()
                    try w.send(["cmd": "watch", "enable": true])
                    watchers.append(w)
                }
                let pos = try greeted()
                let extra = try connect(socket)
                var refused = false
                while let m = try extra.nextReply(timeout: 3) { if m["code"] == "too_many_for_user" { refused = true; break } }
                #expect(refused)
                try pos.send(["cmd": "arm", "timeout_s": 30])
                var card: Reply?
                while let m = try pos.nextReply(timeout: 15) { if m.kind == .card { card = m; break } }
                // Every watcher saw the swipe, none the card.
                for w in watchers {
                    var saw = false
                    while let m = try w.nextReply(timeout: 2) {
                        #expect(m.kind != .card)
                        if m.kind == .swipe { saw = true; break }
                    }
                    #expect(saw)
                }
                #expect(card?["masked_pan"] == "411111******1111")
                for w in watchers { w.close() }
                pos.close()
                extra.close()
                // A mebibyte without a newline: refused and closed, nothing kept.
                let flood = try connect(socket)
                _ = try? flood.sendRaw([UInt8](repeating: 0x61, count: 1 << 20))
                var closed = false
                while let m = try? flood.nextReply(timeout: 5) { if m["code"] == "line_too_long" { closed = true } }
                #expect(closed)
                flood.close()
                // Malformed UTF-8 and JSON: each refused by name, the connection still usable.
                let sloppy = try greeted()
                _ = try sloppy.nextReply(timeout: 5)
                let malformed: [([UInt8], String)] = [
                    ([0x7B, 0xC3, 0x28, 0x7D], "invalid_utf8"), ([0xFF, 0xFE, 0x7B, 0x7D], "invalid_utf8"),
                    ([0xED, 0xA0, 0x80], "invalid_utf8"), (Array(#"{"cmd":"status""#.utf8), "invalid_json"),
                    (Array(#"{"cmd":"status",}"#.utf8), "invalid_json"), (Array(String(repeating: "[", count: 200).utf8), "invalid_json"),
                    (Array(#"{"cmd":"\ud800"}"#.utf8), "invalid_json"), (Array(#"{"cmd":1e999999}"#.utf8), "invalid_json"), (Array(#"{"cmd":["status"]}"#.utf8), "invalid_request"),
                ]
                for (line, code) in malformed {
                    try sloppy.sendRaw(line + [0x0A])
                    let reply = try sloppy.nextReply(timeout: 5)
                    #expect(reply?["code"] == .string(code), "\(line): \(reply?.text ?? "nothing")")
                }
                try sloppy.send(["cmd": "status"])
                #expect(try sloppy.nextReply(timeout: 5)?.kind == .status)
                sloppy.close()
                // A client that sends requests and never reads its replies: hung up on, the
                // replies it did not read dropped with it.
                let hog = try connect(socket)
                floodWithoutReading(hog)
                hogs += 1
                #expect(Background.wait(seconds: 10) { readText(daemon.stderr).components(separatedBy: "unread").count > hogs },
                        "the client that never reads was not hung up on")
                hog.close()
                return try settle(1)?["process"]
            }
            // The first round warms the daemon up (its first card, NIO's and malloc's caches); the
            // second must leave nothing behind.
            let warm = try #require(try round())
            let before = try #require(try settle(1)?["process"])
            _ = warm
            var after = try #require(try round())
            #expect(after["fds"] == before["fds"], "descriptors \(before.text) → \(after.text)")
            // Dispatch's idle worker threads come and go: a busy round may start a few more, and
            // they leave once idle. A leak is a thread that never leaves: wait for the count to
            // come back (polled, bounded by a count of STATUS requests; the bound is a safety net).
            let threadsBefore = before["threads"]?.numberValue ?? 0
            for _ in 0..<400 where (after["threads"]?.numberValue ?? 99) > threadsBefore {
                usleep(50_000)
                after = try #require(try status(admin)?["process"])
            }
            #expect((after["threads"]?.numberValue ?? 99) <= threadsBefore, "threads \(before.text) → \(after.text)")
            let growth = (after["heap_bytes"]?.numberValue ?? 0) - (before["heap_bytes"]?.numberValue ?? 0)
            #expect(growth < 262_144, "heap grew \(Int(growth)) bytes")
            print("clients: 1000 connections, 32 at once, 1 MiB line; descriptors \(before["fds"]?.text ?? "?") → \(after["fds"]?.text ?? "?"), heap +\(Int(growth)) B")
        }
    }
}
