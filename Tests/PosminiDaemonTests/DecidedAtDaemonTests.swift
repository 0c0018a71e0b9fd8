import Testing
import AudioFile
import Magstripe
import SwipeSynth
import SwipeDecoder
import PosminiProtocol
import PosminiDaemon
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// The level-change cases through the whole daemon, played in real time: where each swipe
    /// was decided (the `--expose-decided-at` seam on the watcher's SWIPE), in audio time against
    /// the swipe's true end.
    @Suite("posminid daemon: a swipe right after a level change")
    struct DecidedAtDaemonTests: CommandTesting {
        enum Case: Sendable, CustomTestStringConvertible {
            case synthesized(LevelChange)
            /// Two heads (Tracks 1 and 2); only the second was digitally silent until the change.
            case twoHeadsOneSteps
            case realRecording(String)
            var testDescription: String {
                switch self {
                case .synthesized(let change): change.rawValue
                case .twoHeadsOneSteps: "two heads, one silent until the change"
                case .realRecording(let name): "digital silence, then the real recording \(name)"
                }
            }
        }

        static let cases: [Case] = LevelChange.allCases.map { .synthesized($0) }
            + [.twoHeadsOneSteps, .realRecording("metrocard-ezpay-44k1")]

        /// The replay's channels, the stream time (s) of the swipe's last transition, and whether
        /// the swipe reads.
        func render(_ c: Case) throws -> (channels: [[Float]], end: Double, reads: Bool) {
            switch c {
            case .synthesized, .twoHeadsOneSteps:
                var audio = AudioPath(sampleRate: 44_100)
                audio.snr = 30
                audio.level = -14
                audio.leadingSilence = 0.8
                audio.trailingSilence = 1
                var tracks = [try StripeTrack(text: Self.track1, format: .track1)]
                if case .twoHeadsOneSteps = c { tracks.append(try StripeTrack(text: Self.track2, format: .track2)) }
                let truth = SwipeSynthesizer.render(SwipeScenario(tracks: tracks, motion: Motion(speed: .constant(400)),
                                                                  audio: audio, seed: 8))
                var channels = truth.channels
                let at = Int((truth.swipeStart - 0.3) * 44_100)
                if case .synthesized(let change) = c {
                    change.apply(to: &channels[0], at: at, sampleRate: 44_100)
                } else {
                    LevelChange.silenceThenNoise.apply(to: &channels[1], at: at, sampleRate: 44_100)
                }
                return (channels, truth.swipeEnd, true)
            case .realRecording(let name):
                let wav = try #require(readFile(packageRoot + "/Tests/Recordings/metrocard/\(name).wav"))
                let recording = try WAV.decode(wav).channels[0]
                var configuration = DecoderConfiguration()
                configuration.keepTimeline = true
                let decoder = try SwipeDecoder(sampleRate: 44_100, configuration: configuration)
                let alone = (decoder.push(recording) + decoder.finish()).filter { !$0.bits.isEmpty }
                let last = try #require(alone.first?.timeline?.transitions.last)
                return ([[Float](repeating: 0, count: 22_050) + recording], 0.5 + last, false)
            }
        }

        @Test("decided within 50 ms of audio after the swipe's last transition, through the daemon", arguments: cases)
        func decidedSoonThroughTheDaemon(_ c: Case) throws {
            let directory = try temporaryDirectory()
            let (channels, end, reads) = try render(c)
            let replay = directory + "/replay.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: channels)), to: replay)
            let socket = directory + "/posmini-\(Int(monotonicNow() * 1000) % 100_000).sock"
            let process = try Background(["--replay", replay, "--socket", socket, "--state-directory", directory, "--test-key",
                                          "--replay-hold", "--expose-decided-at"], environment: [:], directory: directory)
            let daemon = DaemonTests.Daemon(process: process, socket: socket, directory: directory)
            defer { daemon.stop() }
            let watcher = try daemon.greeted(), pos = try daemon.greeted()
            try watcher.send(["cmd": "watch", "enable": true])
            #expect(try watcher.nextReply(timeout: 5)?.kind == .watch)
            try pos.send(["cmd": "arm", "timeout_s": 30])
            #expect(try pos.nextReply(timeout: 5)?.kind == .armed)
            // The first swipe the watcher hears of: nothing before it (no phantom from the change).
            var swipe: Reply?
            for _ in 0..<20 {
                guard let m = try watcher.nextReply(timeout: 15) else { break }
                if m.kind == .swipe { swipe = m; break }
            }
            let seen = try #require(swipe, "no SWIPE before the replay ended")
            #expect(seen["read"]?.boolValue == reads, "\(seen.text)")
            let decided = try #require(seen["decided_at"]?.numberValue, "\(seen.text)")
            let latency = decided / 44_100 - end
            print("daemon, \(c.testDescription): decided \((latency * 1000).rounded()) ms after the last transition")
            #expect(latency >= 0 && latency <= 0.050, "decided \(latency * 1000) ms after the last transition")
            let first = try #require(try pos.nextReply(timeout: 5))
            #expect(first["class"]?.stringValue == (reads ? "CARD" : "SWIPE_FAILED"), "\(first.text)")
            if case .twoHeadsOneSteps = c {
                // Both heads' tracks in the one CARD.
                #expect(first["encrypted"]?["tracks"]?["1"] != nil && first["encrypted"]?["tracks"]?["2"] != nil, "\(first.text)")
            }
        }
    }
}
