import PosminiClient
import Testing
import AudioFile
import Magstripe
import SwipeSynth
import PosminiProtocol
@testable import PosminiDaemon
@testable import PosminiDiagnose
import PosminiConfig
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `posminid --diagnose` end to end through real libasound: alsa-lib's `file` plugin plays a
/// synthesized terminal (idle input, then a swipe) as the capture device.
extension ProcessSuites {
    @Suite("posminid --diagnose")
    struct DiagnoseTests: CommandTesting {
        /// Noise at `level` dBFS RMS (uniform, deterministic) around `dc`.
        func idle(seconds: Double, level: Double = -62, dc: Float = 0, seed: UInt64 = 7) -> [Float] {
            var random = TestRandom(seed: seed)
            let amplitude = Float(pow(10, level / 20) * 3.0.squareRoot())
            var out = [Float](repeating: 0, count: Int(seconds * 44_100))
            for k in out.indices {
                let unit = Float(random.next() >> 40) / Float(1 << 24)
                out[k] = dc + amplitude * (2 * unit - 1)
            }
            return out
        }

        func swipe(speed: Double = 300, level: Double = -14, text: String = track1Text, format: TrackFormat = .track1,
                   direction: SwipeDirection = .forward) throws -> [Float] {
            var audio = AudioPath(sampleRate: 44_100)
            audio.snr = 35
            audio.level = level
            audio.leadingSilence = 0.1
            audio.trailingSilence = 0.3
            let scenario = SwipeScenario(tracks: [try StripeTrack(text: text, format: format)],
                                         motion: Motion(speed: .constant(speed), direction: direction), audio: audio, seed: 11)
            return SwipeSynthesizer.render(scenario).channels[0]
        }

        struct Terminal {
            let directory: String
            let environment: [String: String]
            let arguments: [String]
        }

        /// The file plugin device `posmini_diag` replaying `samples` (then silence), a
        /// configuration with a private state directory and no key, no daemon.
        func terminal(_ samples: [Float]) throws -> Terminal {
            let directory = try temporaryDirectory()
            let raw = directory + "/input.raw"
            var bytes: [UInt8] = []
            bytes.reserveCapacity(samples.count * 2 + 88_200 * 2)
            for x in samples + idle(seconds: 2, seed: 99) {
                let v = UInt16(bitPattern: WAV.quantize16(x))
                bytes += [UInt8(v & 0xFF), UInt8(v >> 8)]
            }
            write(bytes, to: raw)
            let conf = directory + "/asound.conf"
            write(Array("""
                pcm.posmini_diag {
                    type file
                    slave.pcm "null"
                    file "/dev/null"
                    infile "\(raw)"
                    format "raw"
                }

                """.utf8), to: conf)
            let state = directory + "/state"
            mkdir(state, 0o700)
            write(Array("state_directory = \(state)\nkey_file = \(directory)/no-key\n".utf8), to: directory + "/posminid.conf")
            return Terminal(directory: directory, environment: ["ALSA_CONFIG_PATH": "/usr/share/alsa/alsa.conf:" + conf],
                            arguments: ["--diagnose", "--device", "posmini_diag", "--config", directory + "/posminid.conf",
                                        "--socket", directory + "/no.sock", "--compatibility", directory + "/none.list",
                                        "--swipe-timeout", "8"])
        }

        func diagnose(_ t: Terminal, _ extra: [String] = []) throws -> (Run, JSONValue?) {
            let result = try run(t.arguments + extra + ["--json"], environment: t.environment)
            let json = try? JSONValue.parse(Array(result.stdout.utf8))
            return (result, json)
        }

        func check(_ report: JSONValue?, _ id: String) -> JSONValue? {
            report?["checks"]?.arrayValue?.first { $0["id"]?.stringValue == id }
        }

        /// The documented shape (docs/DIAGNOSE.md).
        func validateShape(_ report: JSONValue?) {
            let verdicts = ["compatible", "compatible_with_changes", "not_compatible"]
            #expect(verdicts.contains(report?["verdict"]?.stringValue ?? ""), "\(report?.text ?? "no JSON")")
            #expect(report?["summary"]?.stringValue != nil)
            #expect(report?["device"]?.stringValue != nil)
            let checks = report?["checks"]?.arrayValue ?? []
            #expect(!checks.isEmpty)
            for c in checks {
                #expect(c["id"]?.stringValue?.isEmpty == false)
                #expect(["PASS", "WARN", "FAIL", "N/A"].contains(c["status"]?.stringValue ?? ""), "\(c.text)")
                #expect(c["value"] != nil, "\(c.text)")
                if c["status"] == "WARN" || c["status"] == "FAIL" { #expect(c["advice"]?.stringValue?.isEmpty == false, "\(c.text)") }
            }
            #expect(checks.contains { $0["id"]?.stringValue?.contains("swipe") == true })
        }

        @Test("a good swipe on a quiet input: every check passes or does not apply, exit 0; JSON in the documented shape; no card data printed")
        func goodSwipe() throws {
            let t = try terminal(idle(seconds: 2.5) + swipe())
            let (result, report) = try diagnose(t)
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            validateShape(report)
            #expect(report?["verdict"] == "compatible")
            #expect(check(report, "swipe.read")?["status"] == "PASS")
            #expect(check(report, "swipe.read")?["value"]?.stringValue?.contains("Track 1 read") == true)
            #expect(check(report, "device.open")?["status"] == "PASS")
            #expect(check(report, "device.rate")?["value"] == 44_100)
            #expect(check(report, "device.speed_limit")?["value"]?["track1"] == 133)
            #expect(check(report, "mixer.capture_volume")?["status"] == "N/A", "the file plugin has no mixer")
            #expect(check(report, "idle.noise_floor")?["status"] == "PASS")
            #expect(abs((check(report, "swipe.speed")?["value"]?["mean"]?.numberValue ?? 0) - 30) < 0.5)
            #expect(!result.stdout.contains("4111111111111111") && !result.stderr.contains("4111111111111111"))
            #expect(result.stderr.contains("swipe a test card now"))
            // The text form: one line per check and the result.
            let text = try run(t.arguments, environment: t.environment)
            #expect(text.status == 0)
            #expect(text.stdout.contains("PASS  Swipe test"), "\(text.stdout)")
            #expect(text.stdout.contains("Result: compatible: every check passed"), "\(text.stdout)")
        }

        @Test("on a terminal the swipe test shows a live level bar (not in JSON, not when piped)")
        func levelBar() throws {
            let t = try terminal(idle(seconds: 2.5) + swipe())
            let assignments = t.environment.map { "\($0.key)=\(shellQuoted($0.value))" }.joined(separator: " ")
            let command = "env \(assignments) \(shellQuoted(posminidExecutable)) " + t.arguments.map(shellQuoted).joined(separator: " ")
            let out = t.directory + "/tty.out"
            let status = system("script -qec \(shellQuoted(command)) /dev/null > \(shellQuoted(out)) 2>&1")
            #expect((status >> 8) & 0xFF == 0)
            let text = readText(out)
            #expect(text.contains("level ["), "\(text)")
            #expect(text.contains("dBFS"))
            let piped = try run(t.arguments, environment: t.environment)
            #expect(!piped.stderr.contains("level ["))
        }

        @Test("a clipped swipe: the level check warns and says to lower the gain; exit 1")
        func clipped() throws {
            let t = try terminal(idle(seconds: 2.5) + swipe(level: 6))
            let (result, report) = try diagnose(t)
            #expect(result.status == 1, "\(result.stdout)")
            validateShape(report)
            let level = check(report, "swipe.level")
            #expect(level?["status"] == "WARN", "\(report?.text ?? "")")
            #expect(level?["advice"]?.stringValue?.contains("clips") == true)
            #expect(report?["verdict"] == "compatible_with_changes")
        }

        @Test("a DC-shifted, noisy idle input: DC offset and noise floor fail with advice; exit 1")
        func noisyIdle() throws {
            let t = try terminal(idle(seconds: 2.5, level: -28, dc: 0.3) + swipe())
            let (result, report) = try diagnose(t)
            #expect(result.status == 1)
            validateShape(report)
            #expect(check(report, "idle.dc_offset")?["status"] == "FAIL", "\(report?.text ?? "")")
            #expect(check(report, "idle.dc_offset")?["value"]?.numberValue.map { abs($0 - 30) < 1 } == true)
            #expect(check(report, "idle.noise_floor")?["status"] == "FAIL")
            #expect(check(report, "idle.noise_floor")?["advice"]?.stringValue?.contains("noisy") == true)
        }

        @Test("a swipe too fast for the rate: the swipe test fails and says to swipe more slowly; exit 1")
        func tooFast() throws {
            let t = try terminal(idle(seconds: 2.5) + swipe(speed: 2_600))
            let (result, report) = try diagnose(t)
            #expect(result.status == 1)
            validateShape(report)
            let read = check(report, "swipe.read")
            #expect(read?["status"] == "FAIL", "\(report?.text ?? "")")
            #expect(read?["advice"]?.stringValue?.contains("slowly") == true, "\(read?.text ?? "")")
        }

        @Test("no swipe within the timeout: the swipe test fails with what to check; exit 1")
        func noSwipe() throws {
            let t = try terminal(idle(seconds: 12))
            let (result, report) = try diagnose(t)
            #expect(result.status == 1)
            validateShape(report)
            #expect(check(report, "swipe.read")?["status"] == "FAIL")
            #expect(check(report, "swipe.read")?["value"] == "no swipe in 8 s")
            #expect(check(report, "swipe.read")?["advice"]?.stringValue?.contains("plugged in") == true)
        }

        @Test("digital silence on the input: the noise floor check says it is muted or not the reader's input")
        func silence() throws {
            let t = try terminal([Float](repeating: 0, count: 44_100 * 3))
            let (result, report) = try diagnose(t, ["--no-swipe"])
            #expect(result.status == 1)
            #expect(check(report, "idle.noise_floor")?["status"] == "WARN")
            #expect(check(report, "idle.noise_floor")?["advice"]?.stringValue?.contains("muted") == true)
            #expect(check(report, "swipe.read")?["status"] == "N/A")
        }

        @Test("a device the compatibility list calls bad: not compatible, with the list's note; a good entry is named")
        func listed() throws {
            let t = try terminal(idle(seconds: 2.5) + swipe())
            let list = t.directory + "/list"
            write(Array("[Bad adapter]\ncard = posmini_*\nverdict = bad\nnote = loses the end of every swipe\n".utf8), to: list)
            var (result, report) = try diagnose(t, ["--compatibility", list])
            #expect(result.status == 1)
            #expect(report?["verdict"] == "not_compatible", "\(report?.text ?? "")")
            #expect(check(report, "compatibility.list")?["status"] == "FAIL")
            #expect(check(report, "compatibility.list")?["advice"] == "loses the end of every swipe")
            write(Array("[Good adapter]\ncard = posmini_diag\n".utf8), to: list)
            (result, report) = try diagnose(t, ["--compatibility", list])
            #expect(result.status == 0)
            #expect(check(report, "compatibility.list")?["value"]?.stringValue?.hasPrefix("Good adapter (good, ") == true)
        }

        @Test("permissions: a socket, state directory or key file others may read is flagged with the command that mends it")
        func permissions() throws {
            let t = try terminal(idle(seconds: 3))
            let socket = t.directory + "/open.sock", state = t.directory + "/open-state", key = t.directory + "/ik"
            write([], to: socket)
            chmod(socket, 0o666)
            mkdir(state, 0o755)
            chmod(state, 0o755)
            write(Array("scheme = aes128-dukpt\n".utf8), to: key)
            chmod(key, 0o644)
            write(Array("state_directory = \(state)\nkey_file = \(key)\n".utf8), to: t.directory + "/posminid.conf")
            let (result, report) = try diagnose(t, ["--no-swipe", "--socket", socket])
            #expect(result.status == 1)
            #expect(check(report, "permissions.socket")?["status"] == "WARN", "\(report?.text ?? "")")
            #expect(check(report, "permissions.state")?["status"] == "WARN")
            #expect(check(report, "permissions.state")?["advice"]?.stringValue?.contains("chmod 700") == true)
            #expect(check(report, "permissions.key")?["status"] == "FAIL")
            #expect(check(report, "permissions.key")?["advice"]?.stringValue?.contains("chmod 600 \(key)") == true)
            chmod(state, 0o700)
            chmod(key, 0o600)
            let (_, mended) = try diagnose(t, ["--no-swipe", "--socket", socket])
            #expect(check(mended, "permissions.state")?["status"] == "PASS")
            #expect(check(mended, "permissions.key")?["status"] == "PASS")
        }

        @Test("--rate outside 8-192 kHz: the device check fails naming the rate, not compatible, exit 1; no trap")
        func unsupportedRate() throws {
            let t = try terminal(idle(seconds: 1))
            for rate in ["500", "192001", "-1"] {
                let result = try run(["diagnose", "--json", "--no-swipe", "--device", "null", "--rate=" + rate, "--config", t.directory + "/posminid.conf"])
                let report = try? JSONValue.parse(Array(result.stdout.utf8))
                #expect(result.status == 1, "exit \(result.status): \(result.stderr)")
                #expect(check(report, "device.open")?["status"] == "FAIL")
                #expect(check(report, "device.open")?["value"]?.stringValue?.contains("unsupported sample rate \(rate) Hz") == true, "\(result.stdout)")
                #expect(report?["verdict"] == "not_compatible")
            }
        }

        @Test("a device that does not exist: exit 2 and a message naming it; no reader at all: exit 2")
        func missingDevice() throws {
            let t = try terminal(idle(seconds: 1))
            let result = try run(["--diagnose", "--device", "posmini_no_such_pcm", "--config", t.directory + "/posminid.conf"])
            #expect(result.status == 2)
            #expect(result.stderr.contains("posmini_no_such_pcm"), "\(result.stderr)")
            #expect(result.stderr.contains("no such capture device"))
            let json = try run(["diagnose", "--json", "--device", "posmini_no_such_pcm", "--config", t.directory + "/posminid.conf"])
            #expect(json.status == 2)
            #expect((try? JSONValue.parse(Array(json.stdout.utf8)))?["error"]?.stringValue?.contains("posmini_no_such_pcm") == true)
            // No device named, none configured, no sound card (a machine like CI's).
            if access("/sys/class/sound", F_OK) != 0 {
                let none = try run(["--diagnose", "--config", t.directory + "/posminid.conf"])
                #expect(none.status == 2)
                #expect(none.stderr.contains("no reader to check"), "\(none.stderr)")
                #expect(none.stderr.contains("--device"))
            }
        }

        @Test("--plot: the SVG parses as XML, marks the transitions, and draws no pulse, transition or bit where the PAN is (either direction, either track)",
              arguments: [(TrackFormat.track1, SwipeDirection.forward), (.track1, .reverse), (.track2, .reverse)])
        func plot(format: TrackFormat, direction: SwipeDirection) throws {
            let text = format == .track1 ? track1Text : track2Text
            let t = try terminal(idle(seconds: 2.5) + swipe(text: text, format: format, direction: direction))
            let svg = t.directory + "/swipe.svg"
            let (result, report) = try diagnose(t, ["--plot", svg])
            #expect(result.status == 0, "\(report?.text ?? "")")
            #expect(check(report, "swipe.read")?["value"]?.stringValue?.contains(direction.rawValue) == true)
            let picture = readText(svg)
            let parsed = system("/usr/bin/python3 -c \"import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])\" \(shellQuoted(svg))")
            #expect(parsed == 0, "the SVG is not well-formed XML")
            let transitions = attribute("x1", of: "transition", in: picture)
            #expect(transitions.count > 40, "\(transitions.count) transitions drawn")
            // The masked stretch: from the start sentinel through the PAN's masked digits.
            let masked = rectangles(class: "masked", in: picture)
            #expect(!masked.isEmpty)
            for x in transitions {
                #expect(!masked.contains { x > $0.lowerBound + 0.5 && x < $0.upperBound - 0.5 }, "a transition at \(x) inside the masked stretch")
            }
            #expect(picture.contains(">*<"), "masked characters are shown")
            #expect(!picture.contains("4111111111111111"))
            // The digits hidden in the CARD are not among the characters drawn.
            let characters = attributeTexts(class: "character", in: picture).joined()
            #expect(characters.contains("411111******1111"), "\(characters)")
            // Bits are drawn only outside the masked stretch.
            let bits = attribute("x", of: "cell", in: picture)
            #expect(!bits.isEmpty)
            for x in bits { #expect(!masked.contains { x > $0.lowerBound + 0.5 && x < $0.upperBound - 0.5 }, "a bit at \(x) inside the masked stretch") }
            #expect(picture.contains("data-bit=\"1\"") && picture.contains("data-bit=\"0\""))
            // The masked characters are an envelope, not pulses: no column over them drops to less
            // than half the band's height (between pulses the raw waveform would). (The margins
            // either side of the swipe are envelope too, at the noise's height: left out here.)
            let labelled = zip(attribute("x", of: "character", in: picture), attributeTexts(class: "character", in: picture))
            let starred = labelled.filter { $0.1 == "*" }.map(\.0)
            let overMasked = (starred.min() ?? 0)...(starred.max() ?? 0)
            let band = picture.split(separator: "\n").first { $0.contains("class=\"envelope\"") }.map(String.init) ?? ""
            let heights = band.split(separator: "M").dropFirst().compactMap { segment -> Double? in
                let parts = segment.split(whereSeparator: { $0 == " " || $0 == "V" || $0 == "\"" })
                guard parts.count >= 3, let x = Double(parts[0]), overMasked.contains(x),
                      let top = Double(parts[1]), let bottom = Double(parts[2]) else { return nil }
                return bottom - top
            }
            #expect(heights.count > 50)
            let tallest = heights.max() ?? 0
            #expect(heights.filter { $0 < tallest / 2 }.count <= 2, "the masked stretch shows pulses")
        }

        @Test("--report DIR: report, plot, versions, devices, mixer; no card data; raw audio only with --include-audio, which warns")
        func reportBundle() throws {
            let t = try terminal(idle(seconds: 2.5) + swipe())
            let bundle = t.directory + "/bundle"
            let (result, _) = try diagnose(t, ["--report", bundle])
            #expect(result.status == 0)
            for file in ["report.json", "swipe.svg", "versions.txt", "devices.txt", "mixer.txt"] {
                let content = readText(bundle + "/" + file)
                #expect(!content.isEmpty, "\(file)")
                #expect(!content.contains("4111111111111111"), "\(file)")
            }
            #expect(readFile(bundle + "/swipe.wav") == nil)
            #expect((try? JSONValue.parse(readFile(bundle + "/report.json") ?? []))?["verdict"] == "compatible")
            #expect(readText(bundle + "/versions.txt").contains("alsa-lib"))
            let withAudio = t.directory + "/bundle2"
            let (second, _) = try diagnose(t, ["--report", withAudio, "--include-audio"])
            #expect(second.status == 0)
            #expect(second.stderr.contains("test card only"))
            #expect((readFile(withAudio + "/swipe.wav")?.count ?? 0) > 44_100)
        }

        /// Values of `attribute` on elements of `class`.
        func attribute(_ name: String, of cls: String, in text: String) -> [Double] {
            text.split(separator: "\n").filter { $0.contains("class=\"\(cls)\"") }.compactMap { line in
                guard let r = line.firstRange(of: "\(name)=\"") else { return nil }
                return Double(line[r.upperBound...].prefix { $0 != "\"" })
            }
        }

        func rectangles(class cls: String, in text: String) -> [ClosedRange<Double>] {
            let xs = attribute("x", of: cls, in: text), widths = attribute("width", of: cls, in: text)
            return zip(xs, widths).map { $0...($0 + $1) }
        }

        func attributeTexts(class cls: String, in text: String) -> [String] {
            text.split(separator: "\n").filter { $0.contains("class=\"\(cls)\"") }.compactMap { line in
                guard let open = line.firstIndex(of: ">"), let close = line.lastIndex(of: "<") else { return nil }
                return String(line[line.index(after: open)..<close])
            }
        }
    }
}

extension ProcessSuites {
    /// Diagnose against a real mixer: alsa-plugins' `ctl.pulse` over a PulseAudio server's
    /// source (capture volume and mute), and a running daemon that lets go of its device.
    @Suite("posminid --diagnose with PulseAudio")
    struct DiagnosePulseTests: CommandTesting {
        func pactl(_ server: PulseServer, _ arguments: String) -> String {
            let out = server.runtime + "/pactl.out"
            _ = system("env XDG_RUNTIME_DIR='\(server.runtime)' PULSE_SERVER='\(server.env["PULSE_SERVER"]!)' pactl \(arguments) >'\(out)' 2>&1")
            return readText(out)
        }

        func diagnose(_ server: PulseServer, directory: String, _ extra: [String] = []) throws -> (Run, JSONValue?) {
            write(Array("state_directory = \(directory)\nkey_file = \(directory)/no-key\n".utf8), to: directory + "/posminid.conf")
            var env = server.env
            env["PULSE_SOURCE"] = "reader.monitor"
            let result = try run(["--diagnose", "--device", "pulse", "--no-swipe", "--json", "--config", directory + "/posminid.conf",
                                  "--compatibility", directory + "/none.list"] + extra, environment: env)
            return (result, try? JSONValue.parse(Array(result.stdout.utf8)))
        }

        func check(_ report: JSONValue?, _ id: String) -> JSONValue? {
            report?["checks"]?.arrayValue?.first { $0["id"]?.stringValue == id }
        }

        @Test("the mixer: muted fails, a low level fails, 75 % warns, maximum passes; --fix unmutes and raises it, and says what it changed")
        func mixer() throws {
            let directory = try temporaryDirectory()
            chmod(directory, 0o700)
            let server = try PulseServer(directory: directory)
            defer { server.kill() }
            _ = pactl(server, "set-default-source reader.monitor")
            _ = pactl(server, "set-source-mute reader.monitor 1")
            _ = pactl(server, "set-source-volume reader.monitor 30%")
            var (result, report) = try diagnose(server, directory: directory)
            #expect(result.status == 1, "\(result.stdout)\n\(result.stderr)")
            #expect(check(report, "mixer.capture_switch")?["status"] == "FAIL", "\(report?.text ?? result.stderr)")
            #expect(check(report, "mixer.capture_switch")?["advice"]?.stringValue?.contains("--fix") == true)
            #expect(check(report, "mixer.capture_volume")?["status"] == "FAIL")
            #expect(check(report, "mixer.capture_volume")?["value"] == 30)
            #expect(check(report, "mixer.input_source")?["status"] == "N/A")
            _ = pactl(server, "set-source-mute reader.monitor 0")
            _ = pactl(server, "set-source-volume reader.monitor 75%")
            (result, report) = try diagnose(server, directory: directory)
            #expect(check(report, "mixer.capture_switch")?["status"] == "PASS")
            #expect(check(report, "mixer.capture_volume")?["status"] == "WARN")
            _ = pactl(server, "set-source-volume reader.monitor 100%")
            (result, report) = try diagnose(server, directory: directory)
            #expect(check(report, "mixer.capture_volume")?["status"] == "PASS", "\(report?.text ?? "")")
            // --fix from muted and low.
            _ = pactl(server, "set-source-mute reader.monitor 1")
            _ = pactl(server, "set-source-volume reader.monitor 20%")
            (result, report) = try diagnose(server, directory: directory, ["--fix"])
            #expect(check(report, "mixer.capture_switch")?["status"] == "PASS", "\(report?.text ?? "")")
            #expect(check(report, "mixer.capture_volume")?["status"] == "PASS")
            let fixed = report?["fixed"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(fixed.contains { $0.contains("capture switched on") }, "\(fixed)")
            #expect(fixed.contains { $0.contains("20 % → 100 %") }, "\(fixed)")
            #expect(pactl(server, "get-source-mute reader.monitor").contains("no"))
            #expect(pactl(server, "get-source-volume reader.monitor").contains("100%"))
        }

        @Test("a running daemon lets go of the device for the check (release → RELEASED) and takes it back after")
        func daemonRelease() throws {
            let directory = try temporaryDirectory()
            chmod(directory, 0o700)
            let server = try PulseServer(directory: directory)
            defer { server.kill() }
            var env = server.env
            env["PULSE_SOURCE"] = "reader.monitor"
            let socket = directory + "/posmini.sock"
            let daemon = try Background(["--device", "pulse", "--socket", socket, "--state-directory", directory, "--test-key"],
                                        environment: env, directory: directory)
            defer { daemon.stop() }
            var watcher: ControlClient?
            for _ in 0..<100 where watcher == nil { watcher = try? ControlClient(path: socket); if watcher == nil { usleep(50_000) } }
            let client = try #require(watcher)
            _ = try client.nextReply(timeout: 5)
            _ = try client.nextReply(timeout: 5)
            try client.send(["cmd": "watch", "enable": true])
            #expect(Background.wait(seconds: 10) { readText(daemon.stderr).contains("reader pulse capturing") })
            let (result, report) = try diagnose(server, directory: directory, ["--socket", socket])
            #expect(check(report, "daemon.release")?["status"] == "PASS", "\(result.stdout)\n\(result.stderr)")
            #expect(check(report, "device.open")?["status"] == "PASS")
            #expect(check(report, "reader.jack_flaps")?["status"] == "PASS", "the daemon's count")
            #expect(check(report, "reader.jack_flaps")?["value"] == 0)
            var sawReleased = false, sawBack = false
            while let m = try client.nextReply(timeout: 5) {
                if m.kind == .reader && m["error"]?.stringValue?.contains("diagnose") == true { sawReleased = true }
                if sawReleased && m.kind == .reader && m["capturing"] == true { sawBack = true; break }
            }
            #expect(sawReleased && sawBack, "\(readText(daemon.stderr))")
            #expect(readText(daemon.stderr).contains("taken back after diagnose"))
        }
    }
}

@Suite("Compatibility list")
struct CompatibilityListTests {
    @Test("the shipped list parses; entries match by USB id or card name, with their settings")
    func shipped() throws {
        let entries = try CompatibilityList.load(packageRoot + "/data/compatibility.list")
        #expect(entries.count >= 1)
        let pulse = try #require(entries.first { $0.matches(usbID: nil, names: ["pulse"]) })
        #expect(pulse.verdict == .good)
        #expect(pulse.captureVolume == 100)
        let text = """
            [Adapter A]
            usb = 0D8C:0014
            verdict = bad
            note = clips
            [Built-in * jack]
            card = HDA*
            mic_boost = 25%
            input_source = Headset Mic
            """
        let list = try CompatibilityList.parse(text, file: "t.list")
        #expect(list.count == 2)
        #expect(list[0].matches(usbID: "0d8c:0014", names: []))
        #expect(!list[0].matches(usbID: "0d8c:0015", names: ["Adapter A"]))
        #expect(list[0].verdict == .bad && list[0].line == 1)
        #expect(list[1].matches(usbID: nil, names: ["PCH", "HDA Intel PCH"]))
        #expect(list[1].micBoost == 25 && list[1].inputSource == "Headset Mic")
    }

    @Test("a broken entry is refused naming file and line")
    func refusals() {
        let cases: [(String, String)] = [
            ("usb = 0d8c:0014", "before the first"),
            ("[A]\nusb = 0d8c", "vendor:product"),
            ("[A]\ncard = x\nverdict = maybe", "good or bad"),
            ("[A]\ncard = x\ncapture_volume = 120", "percentage"),
            ("[A]\ncard = x\ncolour = blue", "unknown key"),
            ("[A]\nverdict = good", "neither usb nor card"),
            ("[A\ncard = x", "[Device name]"),
        ]
        for (text, message) in cases {
            #expect(throws: CompatibilityList.Failure.self, "\(text)") { _ = try CompatibilityList.parse(text, file: "t.list") }
            do { _ = try CompatibilityList.parse(text, file: "t.list") } catch {
                #expect(error.description.hasPrefix("t.list:"), "\(error)")
                #expect(error.description.contains(message), "\(error)")
            }
        }
    }
}
