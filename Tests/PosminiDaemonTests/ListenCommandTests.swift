import Testing
import AudioFile
import Magstripe
import SwipeSynth
import TestSupport
import PosminiProtocol
#if canImport(Glibc)
import Glibc
#endif

/// `posminid listen` end to end through real libasound: alsa-lib's `file` plugin as an unpaced
/// capture device, a PulseAudio null sink as a paced one, and paced and unpaced replays.
extension ProcessSuites {
    @Suite("posminid listen")
    struct ListenCommandTests: CommandTesting {
        /// Three swipes (Tracks 1, 2, 3) and a second of silence, 16-bit mono at 44.1 kHz.
        func threeSwipes() throws -> (wav: String, raw: String, frames: Int) {
            var samples: [Float] = []
            let texts: [(String, TrackFormat)] = [(Self.track1, .track1), (Self.track2, .track2), (Self.track3, .track3)]
            for (k, (text, format)) in texts.enumerated() {
                var audio = AudioPath(sampleRate: 44_100)
                audio.snr = 35
                audio.leadingSilence = 0.15
                audio.trailingSilence = 0.15
                let scenario = SwipeScenario(tracks: [try StripeTrack(text: text, format: format)],
                                             motion: Motion(speed: .constant(350)), audio: audio, seed: UInt64(k + 5))
                samples += SwipeSynthesizer.render(scenario).channels[0]
            }
            samples += [Float](repeating: 0, count: 44_100)
            let directory = try temporaryDirectory()
            let wav = directory + "/three.wav", raw = directory + "/three.raw"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: wav)
            var bytes: [UInt8] = []
            bytes.reserveCapacity(samples.count * 2)
            for x in samples {
                let v = UInt16(bitPattern: WAV.quantize16(x))
                bytes += [UInt8(v & 0xFF), UInt8(v >> 8)]
            }
            write(bytes, to: raw)
            return (wav, raw, samples.count)
        }

        /// The `"status":"ok"` tracks of JSON output, by track number.
        func okTracks(_ output: String) -> [String] {
            output.split(separator: "\n").compactMap { line -> String? in
                guard line.contains("\"status\":\"ok\"") else { return nil }
                for n in 1...3 where line.contains("\"track\":\(n),") || line.contains("\"track\":\(n)}") { return "\(n)" }
                return "?"
            }
        }

        @Test("a PCM name that does not exist: exit 2 and a message naming it")
        func missingDevice() throws {
            let result = try run(["listen", "--device", "posmini_no_such_pcm", "--seconds", "1"])
            #expect(result.status == 2)
            #expect(result.stderr.contains("posmini_no_such_pcm"))
            #expect(result.stderr.contains("snd_pcm_open"))
            #expect(result.stderr.contains("arecord -L"))
        }

        @Test("through libasound's file plugin: every swipe arrives, no clear data printed")
        func alsaFilePlugin() throws {
            let (_, raw, _) = try threeSwipes()
            let directory = try temporaryDirectory()
            let conf = directory + "/asound.conf"
            let text = """
                pcm.posmini_replay {
                    type file
                    slave.pcm "null"
                    file "/dev/null"
                    infile "\(raw)"
                    format "raw"
                }

                """
            write(Array(text.utf8), to: conf)
            let result = try run(["listen", "--device", "posmini_replay", "--json", "--swipes", "3", "--seconds", "30"],
                                 environment: ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:" + conf])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("S16_LE"))
            #expect(okTracks(result.stdout) == ["1", "2", "3"], "\(result.stdout)\n\(result.stderr)")
            #expect(!result.stdout.contains("4111111111111111"))
            #expect(!result.stderr.contains("4111111111111111"))
        }

        @Test("a paced replay takes the recording's time and ends with it (exit 0); --fast does not wait")
        func replay() throws {
            let (wav, _, frames) = try threeSwipes()
            let duration = Double(frames) / 44_100
            var begin = monotonicNow()
            let paced = try run(["listen", "--replay", wav, "--json"])
            let pacedTime = monotonicNow() - begin
            #expect(paced.status == 0, "\(paced.stderr)")
            #expect(okTracks(paced.stdout) == ["1", "2", "3"])
            #expect(pacedTime >= duration - 0.05, "took \(pacedTime) s for \(duration) s of audio")
            #expect(paced.stderr.contains("capture ended: end of the source"))
            begin = monotonicNow()
            let fast = try run(["listen", "--replay", wav, "--fast", "--json"])
            #expect(fast.status == 0)
            #expect(okTracks(fast.stdout) == ["1", "2", "3"])
            #expect(monotonicNow() - begin < duration)
            // Each result says where in the stream it was decided: after the swipe's end (end_s),
            // in ascending order, and the same paced or not (audio time, not the machine's).
            func decided(_ out: String) -> [Double] {
                out.split(separator: "\n").compactMap { try? JSONValue.parse(Array($0.utf8)) }.compactMap { line in
                    guard let at = line["decided_at"]?.numberValue, let end = line["end_s"]?.numberValue else { return nil }
                    #expect(at / 44_100 >= end - 0.001 && at / 44_100 <= end + 0.5, "decided at \(at / 44_100) s for a swipe ending at \(end) s")
                    return at
                }
            }
            let pacedAt = decided(paced.stdout)
            #expect(pacedAt.count == 3 && pacedAt == pacedAt.sorted())
            #expect(decided(fast.stdout) == pacedAt)
        }

        @Test("a rate outside 8-192 kHz, a WAV's, --raw-rate's, or asked of a device: exit 2, naming the rate; never a trap")
        func unsupportedRates() throws {
            let wav = try wavClaiming(rate: 500)
            let replay = try run(["listen", "--replay", wav, "--fast"])
            #expect(replay.status == 2, "exit \(replay.status): \(replay.stderr)")
            #expect(replay.stderr.contains(wav) && replay.stderr.contains("unsupported sample rate 500 Hz"), "\(replay.stderr)")
            let raw = try temporaryDirectory() + "/silence.raw"
            write([UInt8](repeating: 0, count: 8_000), to: raw)
            for rate in [500, 7_999, 192_001, -1, 0] {
                let r = try run(["listen", "--replay", raw, "--raw-format", "S16_LE", "--raw-rate=\(rate)", "--fast"])
                #expect(r.status == 2, "--raw-rate \(rate): exit \(r.status): \(r.stderr)")
                #expect(r.stderr.contains("unsupported sample rate \(rate) Hz"), "\(r.stderr)")
            }
            for rate in [8_000, 192_000] {
                let r = try run(["listen", "--replay", raw, "--raw-format", "S16_LE", "--raw-rate=\(rate)", "--fast"])
                #expect(r.status == 0, "--raw-rate \(rate): exit \(r.status): \(r.stderr)")
                #expect(r.stderr.contains("\(rate) Hz, 1 channel"), "\(r.stderr)")
            }
            for rate in [500, -44_100, 4_294_967_296] {
                let r = try run(["listen", "--device", "null", "--rate=\(rate)", "--seconds", "1"])
                #expect(r.status == 2, "--rate \(rate): exit \(r.status): \(r.stderr)")
                #expect(r.stderr.contains("unsupported sample rate \(rate) Hz") && r.stderr.contains("requested rate"), "\(r.stderr)")
            }
        }

        @Test("a device that settles on a rate outside 8-192 kHz (asked for 44.1 kHz, it has 4 kHz only) is refused after the negotiation, naming the rate")
        func negotiatedRate() throws {
            let directory = try temporaryDirectory()
            let conf = directory + "/asound.conf"
            // The plug plugin without resampling (the capture turns it off) has only its slave's rate.
            let text = """
                pcm.posmini_4k {
                    type plug
                    slave { pcm "null" rate 4000 }
                }

                """
            write(Array(text.utf8), to: conf)
            let result = try run(["listen", "--device", "posmini_4k", "--seconds", "1"],
                                 environment: ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:" + conf])
            #expect(result.status == 2, "exit \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("unsupported sample rate 4000 Hz") && result.stderr.contains("negotiated rate"), "\(result.stderr)")
        }

        @Test("a broken replay file or a wrong raw format is refused with a clear message")
        func badReplay() throws {
            let path = try temporaryDirectory() + "/broken.wav"
            write(Array("RIFF....WAVEjunk".utf8), to: path)
            let broken = try run(["listen", "--replay", path])
            #expect(broken.status == 2)
            #expect(broken.stderr.contains(path))
            let format = try run(["listen", "--replay", path, "--raw-format", "S8"])
            #expect(format.status != 0)
            #expect(format.stderr.contains("unknown raw format"))
            let both = try run(["listen"])
            #expect(both.status != 0)
            #expect(both.stderr.contains("exactly one of --device"))
        }
    }
}

/// A PulseAudio server with a null sink, private to one test: a paced virtual sound card.
final class PulseServer {
    let runtime: String
    let env: [String: String]

    init(directory: String) throws {
        runtime = directory + "/runtime"
        mkdir(runtime, 0o700)
        env = ["XDG_RUNTIME_DIR": runtime, "HOME": directory, "PULSE_SERVER": "unix:\(runtime)/pulse/native"]
        let start = "env XDG_RUNTIME_DIR='\(runtime)' HOME='\(directory)' pulseaudio -n --daemonize=yes --exit-idle-time=-1 --system=no "
            + "--log-target=file:\(directory)/pulse.log "
            + "-L 'module-null-sink sink_name=reader rate=44100 channels=1' -L module-native-protocol-unix >/dev/null 2>&1"
        guard system(start) == 0 else { throw PulseError.notStarted(readText(directory + "/pulse.log")) }
        // Ready when pactl can talk to it.
        for _ in 0..<100 {
            if system("env XDG_RUNTIME_DIR='\(runtime)' HOME='\(directory)' pactl info >/dev/null 2>&1") == 0 { return }
            usleep(50_000)
        }
        throw PulseError.notStarted("pactl never reached the server")
    }

    enum PulseError: Error { case notStarted(String) }

    func play(_ wav: String) -> Int32 {
        system("env XDG_RUNTIME_DIR='\(runtime)' PULSE_SERVER='\(env["PULSE_SERVER"]!)' paplay --device=reader '\(wav)' >/dev/null 2>&1")
    }

    func kill() {
        _ = system("env XDG_RUNTIME_DIR='\(runtime)' pulseaudio --kill >/dev/null 2>&1")
    }

    deinit { kill() }
}

/// A `posminid` running in the background: its output files and pid.
struct Background {
    let stdout: String
    let stderr: String
    let pid: Int32

    /// Runs `posminid arguments` (after `prefix`, a wrapper such as systemd-socket-activate) with
    /// `environment` added; the pid is the wrapper's when there is one (it execs posminid).
    init(_ arguments: [String], environment: [String: String], directory: String, prefix: [String] = []) throws {
        stdout = directory + "/bg.stdout"
        stderr = directory + "/bg.stderr"
        let pidFile = directory + "/bg.pid"
        let assignments = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuoted($0.value))" }
        let words = ["exec", "env"] + assignments + prefix.map(shellQuoted) + [shellQuoted(posminidExecutable)] + arguments.map(shellQuoted)
        let command = words.joined(separator: " ")
        _ = system("sh -c \(shellQuoted("(" + command + ") >'\(stdout)' 2>'\(stderr)' & echo $! >'\(pidFile)'"))")
        pid = Int32(readText(pidFile).split(separator: "\n").first ?? "") ?? -1
    }

    var running: Bool { pid > 0 && Glibc.kill(pid, 0) == 0 && !isZombie }

    /// SIGTERM, and up to 10 s for it to end.
    func stop() {
        Glibc.kill(pid, SIGTERM)
        _ = Background.wait(seconds: 10) { !running }
    }
    private var isZombie: Bool { readText("/proc/\(pid)/stat").contains(") Z ") }

    /// Waits (up to `seconds`) for `condition`.
    static func wait(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = monotonicNow() + seconds
        while monotonicNow() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    /// Waits (up to `seconds`) for `condition` on the output so far.
    func waitFor(seconds: Double, _ condition: (String, String) -> Bool) -> Bool {
        let deadline = monotonicNow() + seconds
        while monotonicNow() < deadline {
            if condition(readText(stdout), readText(stderr)) { return true }
            usleep(20_000)
        }
        return false
    }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

extension ProcessSuites {
    @Suite("posminid listen through PulseAudio")
    struct PulseListenTests: CommandTesting {
        @Test("a swipe played into a PulseAudio null sink arrives through ALSA's pulse device; killing the server ends the session, reported")
        func pulse() throws {
            let directory = try temporaryDirectory()
            let server = try PulseServer(directory: directory)
            defer { server.kill() }
            let wav = try swipeFile([(Self.track2, .track2)])
            var env = server.env
            env["PULSE_SOURCE"] = "reader.monitor"
            let listener = try Background(["listen", "--device", "pulse", "--json", "--seconds", "30"], environment: env, directory: directory)
            #expect(listener.waitFor(seconds: 10) { _, err in err.contains("capturing from pulse") }, "\(readText(listener.stderr))")
            #expect(server.play(wav) == 0)
            #expect(listener.waitFor(seconds: 10) { out, _ in out.contains("\"status\":\"ok\"") },
                    "stdout: \(readText(listener.stdout)) stderr: \(readText(listener.stderr))")
            #expect(!readText(listener.stdout).contains("4111111111111111"))
            // The server goes away under the reader: the session ends on its own, exit 1, and says why.
            server.kill()
            #expect(listener.waitFor(seconds: 10) { _, err in err.contains("capture ended") }, "\(readText(listener.stderr))")
            let deadline = monotonicNow() + 5
            while listener.running && monotonicNow() < deadline { usleep(20_000) }
            #expect(!listener.running)
        }
    }
}
