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

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`.
final class NotifyListener {
    let path: String
    let fd: Int32

    init(path: String) {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    deinit { close(fd); unlink(path) }

    /// Datagrams received within `seconds`, until `until` is among them.
    func receive(seconds: Double, until: String) -> [String] {
        var got: [String] = []
        let deadline = monotonicNow() + seconds
        while monotonicNow() < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 50) == 1 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4_096)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { continue }
            let text = String(decoding: buffer[0..<n], as: UTF8.self)
            got.append(text)
            if text.contains(until) { return got }
        }
        return got
    }
}

extension ProcessSuites {
    /// The daemon end to end: real processes, a replayed recording as the reader.
    @Suite("posminid daemon")
    struct DaemonTests: CommandTesting {
        /// A recording with a Track 1 swipe `delay` seconds in (`swipes` of them, `gap` apart),
        /// then silence. `steadyNoise`: the whole recording over one noise bed at about -60 dBFS
        /// instead of each swipe's own noise (swipes close together need a noise that does not
        /// change between them: the decoder's gate measures it).
        func replayFile(delay: Double, swipes: Int = 1, gap: Double = 1.0, directory: String, steadyNoise: Bool = false) throws -> String {
            var samples = [Float](repeating: 0, count: Int(delay * 44_100))
            for k in 0..<swipes {
                var audio = AudioPath(sampleRate: 44_100)
                audio.snr = steadyNoise ? 80 : 35
                audio.leadingSilence = 0.05
                audio.trailingSilence = gap
                let scenario = SwipeScenario(tracks: [try StripeTrack(text: Self.track1, format: .track1)],
                                             motion: Motion(speed: .constant(300)), audio: audio, seed: UInt64(k + 1))
                samples += SwipeSynthesizer.render(scenario).channels[0]
            }
            samples += [Float](repeating: 0, count: 44_100 * 30)
            if steadyNoise {
                var random = TestRandom(seed: 17)
                for k in samples.indices { samples[k] += 0.0017 * (Float(random.next() >> 40) / Float(1 << 24) * 2 - 1) }
            }
            let path = directory + "/replay.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: path)
            return path
        }

        struct Daemon {
            let process: Background
            let socket: String
            let directory: String

            func client() throws -> ControlClient {
                var last: (any Error)?
                for _ in 0..<100 {
                    do { return try ControlClient(path: socket) } catch { last = error; usleep(50_000) }
                }
                throw last!
            }

            /// A client greeted once the daemon has freed a slot a client just gave up (it does
            /// once it has seen the hang-up): tries bounded by count, nil if none succeeds.
            func clientOnceSlotFree() throws -> ControlClient? {
                for _ in 0..<200 {
                    let c = try client()
                    if try c.nextReply(timeout: 10)?.kind == .version { return c }
                    usleep(20_000)
                }
                return nil
            }

            /// A client past its greeting.
            func greeted() throws -> ControlClient {
                let c = try client()
                #expect(try c.nextReply(timeout: 5)?.kind == .version)
                #expect(try c.nextReply(timeout: 5)?.kind == .readers)
                return c
            }

            func stop() {
                if process.pid > 0 { kill(process.pid, SIGTERM) }
                let deadline = monotonicNow() + 10
                while process.running && monotonicNow() < deadline { usleep(20_000) }
            }
        }

        /// A daemon replaying `swipes` swipes after `replayDelay` seconds. A replay meant to be
        /// read (a delay under 20 s) is held until the first arm (`--replay-hold`): its swipe
        /// comes `replayDelay` seconds after the POS app armed, however slowly the daemon started
        /// or the client connected, never before.
        func startDaemon(replayDelay: Double = 1.5, swipes: Int = 1, extra: [String] = [], environment: [String: String] = [:],
                         config: String? = nil, testKey: Bool = true, directory given: String? = nil) throws -> Daemon {
            let directory = try given ?? temporaryDirectory()
            let replay = try replayFile(delay: replayDelay, swipes: swipes, directory: directory)
            let socket = directory + "/posmini-\(Int(monotonicNow() * 1000) % 100_000).sock"
            var arguments = ["--replay", replay, "--socket", socket, "--state-directory", directory] + (testKey ? ["--test-key"] : [])
            if replayDelay < 20 { arguments.append("--replay-hold") }
            if let config {
                write(Array(config.utf8), to: directory + "/posminid.conf")
                arguments += ["--config", directory + "/posminid.conf"]
            }
            let process = try Background(arguments + extra, environment: environment, directory: directory)
            return Daemon(process: process, socket: socket, directory: directory)
        }

        @Test("arm, swipe: CARD to the armed client with masked fields only; a watcher sees SWIPE without card data; a cancel after the card is too_late")
        func armAndCard() throws {
            let daemon = try startDaemon()
            defer { daemon.stop() }
            let pos = try daemon.greeted(), watcher = try daemon.greeted()
            try watcher.send(["cmd": "watch", "enable": true])
            #expect(try watcher.nextReply(timeout: 5)?.kind == .watch)
            try pos.send(["cmd": "arm", "timeout_s": 30, "reference": "order-1"])
            #expect(try pos.nextReply(timeout: 5)?.kind == .armed)
            let reply = try #require(try pos.nextReply(timeout: 15))
            guard case .card(let card) = reply else { Issue.record("not a CARD: \(reply.json.text)"); return }
            #expect(card.maskedPAN == "411111******1111" && card.last4 == "1111")
            #expect(card.reference == "order-1")
            #expect(card.cardType == .payment)
            #expect(card.tracks.allSatisfy { $0.masked?.contains("4111111111111111") != true })
            #expect(card.encrypted?["ksn"] != nil)
            #expect(!reply.json.text.contains("4111111111111111"))
            var seen: [Reply.Kind] = []
            while let m = try watcher.nextReply(timeout: 2) {
                seen.append(m.kind)
                #expect(!m.json.text.contains("411111"))
            }
            #expect(seen.contains(.swipe))
            #expect(!seen.contains(.card))
            // The cashier's cancel came after the card: too_late names the sale that has its card,
            // and echoes the request's id.
            try pos.send(Request.cancel(reader: nil).json(id: "c-1"))
            let late = try #require(try pos.next(timeout: 5))
            #expect(late["class"] == "ERROR" && late["code"] == "too_late" && late["reference"] == "order-1" && late["id"] == "c-1", "\(late.text)")
            let log = readText(daemon.process.stderr)
            #expect(!log.contains("4111111111111111") && !log.contains("411111******"))
        }

        @Test("examples/pos_client.py (the posmini library from the source tree, Debian's python3) arms and prints the masked card")
        func pythonExample() throws {
            let daemon = try startDaemon(replayDelay: 2)
            defer { daemon.stop() }
            _ = try daemon.greeted()
            let out = daemon.directory + "/example.out"
            let status = system("PYTHONPATH=\(shellQuoted(packageRoot + "/clients/python")) /usr/bin/python3 \(shellQuoted(packageRoot + "/examples/pos_client.py")) --socket \(shellQuoted(daemon.socket)) --timeout 30 --reference A-7 >\(shellQuoted(out)) 2>&1")
            let text = readText(out)
            #expect(status == 0, "\(text)")
            #expect(text.contains("card: payment 411111******1111 expires 2812"), "\(text)")
            #expect(!text.contains("4111111111111111"))
        }

        @Test("posminictl: status, and arm waits for the masked card")
        func posminictl() throws {
            let daemon = try startDaemon(replayDelay: 2)
            defer { daemon.stop() }
            _ = try daemon.greeted()
            let out = daemon.directory + "/ctl.out"
            var status = system("\(shellQuoted(posminictlExecutable)) arm --timeout 30 --socket \(shellQuoted(daemon.socket)) >\(shellQuoted(out)) 2>&1")
            #expect(status == 0, "\(readText(out))")
            #expect(readText(out).contains("card on replay, payment, 411111******1111, expires 2812"), "\(readText(out))")
            status = system("\(shellQuoted(posminictlExecutable)) status --socket \(shellQuoted(daemon.socket)) >\(shellQuoted(out)) 2>&1")
            #expect(status == 0)
            #expect(readText(out).contains("reader replay"), "\(readText(out))")
            #expect(readText(out).contains("(1 read)"), "\(readText(out))")
            #expect(readText(out).contains("TEST KEY"), "status says the key is a published test key: \(readText(out))")
            // An unreachable daemon: one line and EX_UNAVAILABLE (69), not a usage error.
            status = system("\(shellQuoted(posminictlExecutable)) status --socket /nonexistent/s.sock >\(shellQuoted(out)) 2>&1")
            #expect(status >> 8 == 69, "exit status \(status >> 8)")
            #expect(readText(out).contains("is posminid running?"))
            #expect(readText(out).split(separator: "\n").count == 1, "\(readText(out))")
            #expect(!readText(out).contains("USAGE"))
        }

        @Test("posminictl: watch shows the readers on connect and never a raw line; arm shows a fractional timeout as given")
        func posminictlWatchAndArm() throws {
            let daemon = try startDaemon(replayDelay: 2)
            defer { daemon.stop() }
            _ = try daemon.greeted()
            let out = daemon.directory + "/watch.out", pidFile = daemon.directory + "/watch.pid"
            let watch = "\(shellQuoted(posminictlExecutable)) watch --socket \(shellQuoted(daemon.socket))"
            _ = system("sh -c \(shellQuoted("\(watch) >\(shellQuoted(out)) 2>&1 & echo $! >\(shellQuoted(pidFile))"))")
            let pid = Int32(readText(pidFile).split(separator: "\n").first ?? "") ?? -1
            defer { if pid > 0 { kill(pid, SIGTERM) } }
            #expect(Background.wait(seconds: 20) { readText(out).contains("reader replay") }, "\(readText(out))")
            // An arm that times out: ARMED with the timeout as given, then TIMEOUT.
            let armOut = daemon.directory + "/arm.out"
            let status = system("\(shellQuoted(posminictlExecutable)) arm --timeout 0.5 --socket \(shellQuoted(daemon.socket)) >\(shellQuoted(armOut)) 2>&1")
            #expect(status >> 8 == 1, "the arm timed out: \(readText(armOut))")
            #expect(readText(armOut).contains("for 0.5 s"), "\(readText(armOut))")
            #expect(readText(armOut).contains("timeout on replay"), "\(readText(armOut))")
            let lines = readText(out).split(separator: "\n")
            #expect(lines.first?.hasPrefix("reader replay") == true, "the readers come first: \(lines)")
            #expect(!lines.contains { $0.hasPrefix("{") }, "no raw JSON line: \(lines)")
        }

        @Test("a plug click before the swipe sends no SWIPE_FAILED: the armed client gets only the CARD; STATUS counts the click in noise_bursts and the debug log names it")
        func plugClickIsNoSwipe() throws {
            let directory = try temporaryDirectory()
            // The reader's noise; a plug click (a few ms of decaying full-scale ringing) at
            // 0.8 s; the swipe at 1.5 s.
            let swipe = try replayFile(delay: 1.5, directory: directory, steadyNoise: true)
            var audio = try WAV.decode(try #require(readFile(swipe)))
            let clickAt = 44_100 * 8 / 10
            for k in 0..<176 {
                audio.channels[0][clickAt + k] += Float(exp(-Double(k) / 40) * sin(Double(k) * 0.35))
            }
            write(WAV.encode16(audio), to: swipe)
            let socket = directory + "/posmini-\(Int(monotonicNow() * 1000) % 100_000).sock"
            write(Array("log_level = debug\n".utf8), to: directory + "/posminid.conf")
            let process = try Background(["--replay", swipe, "--socket", socket, "--state-directory", directory, "--test-key",
                                          "--replay-hold", "--config", directory + "/posminid.conf"], environment: [:], directory: directory)
            let daemon = Daemon(process: process, socket: socket, directory: directory)
            defer { daemon.stop() }
            let pos = try daemon.greeted()
            try pos.send(["cmd": "arm", "timeout_s": 30])
            #expect(try pos.nextReply(timeout: 5)?.kind == .armed)
            let first = try #require(try pos.nextReply(timeout: 15))
            #expect(first.kind == .card, "\(first.json.text)")
            try pos.send(Request.status)
            guard case .status(let status)? = try pos.nextReply(timeout: 5) else { Issue.record("no STATUS"); return }
            #expect(status.counters.noiseBursts >= 1, "\(status)")
            #expect(status.counters.failedReads.isEmpty, "\(status)")
            let log = readText(daemon.process.stderr)
            #expect(log.contains("noise burst"), "\(log)")
        }

        @Test("timeout, cancel, busy reader, disarm on disconnect, status")
        func armEndings() throws {
            let daemon = try startDaemon(replayDelay: 20)
            defer { daemon.stop() }
            let a = try daemon.greeted(), b = try daemon.greeted()
            try a.send(["cmd": "arm", "timeout_s": 0.5])
            #expect(try a.nextReply(timeout: 5)?.kind == .armed)
            #expect(try a.nextReply(timeout: 5)?.kind == .timeout)
            try a.send(["cmd": "arm"])
            #expect(try a.nextReply(timeout: 5)?.kind == .armed)
            try b.send(["cmd": "arm"])
            #expect(try b.nextReply(timeout: 5)?.errorCode == "reader_busy")
            try a.send(["cmd": "cancel"])
            #expect(try a.nextReply(timeout: 5)?.kind == .cancelled)
            try a.send(["cmd": "cancel"])
            #expect(try a.nextReply(timeout: 5)?.errorCode == "not_armed")
            try a.send(["cmd": "arm"])
            #expect(try a.nextReply(timeout: 5)?.kind == .armed)
            // a leaves while armed: the reader is free again.
            a.close()
            usleep(300_000)
            try b.send(["cmd": "arm"])
            #expect(try b.nextReply(timeout: 5)?.kind == .armed)
            try b.send(Request.status)
            guard case .status(let status)? = try b.nextReply(timeout: 5) else { Issue.record("no STATUS"); return }
            #expect(status.armed == 1)
            #expect(status.readers.first?.id == "replay" && status.readers.first?.source == .replay)
        }

        @Test("bad input gets ERROR naming the problem (echoing the request's id) and the connection stays usable; an overlong line closes it")
        func badInput() throws {
            let daemon = try startDaemon(replayDelay: 20)
            defer { daemon.stop() }
            let c = try daemon.greeted()
            let raw = try daemon.client()
            for (line, code) in [("not json", "invalid_json"), (#"{"cmd":"dance"}"#, "unknown_command"),
                                 (#"{"cmd":"arm","timeout_s":"x"}"#, "invalid_request"), (#"{"cmd":"arm","timeout_s":900}"#, "invalid_timeout"),
                                 ("[1]", "invalid_request")] {
                try c.sendRaw(Array((line + "\n").utf8))
                #expect(try c.nextReply(timeout: 5)?["code"] == .string(code), "\(line)")
            }
            try c.sendRaw([0x7B, 0xC3, 0x28, 0x7D, 0x0A])
            #expect(try c.nextReply(timeout: 5)?["code"] == "invalid_utf8")
            // Request ids: echoed by the reply and by a refusal; an id that is not a string of at
            // most 64 bytes is refused, without an echo.
            for (line, code) in [(#"{"cmd":"dance","id":"q-1"}"#, "unknown_command"), (#"{"cmd":"arm","timeout_s":900,"id":"q-1"}"#, "invalid_timeout")] {
                try c.sendRaw(Array((line + "\n").utf8))
                let m = try #require(try c.next(timeout: 5))
                #expect(m["code"] == .string(code) && m["id"] == "q-1", "\(m.text)")
            }
            for line in [#"{"cmd":"status","id":7}"#, #"{"cmd":"status","id":"\#(String(repeating: "i", count: 65))"}"#] {
                try c.sendRaw(Array((line + "\n").utf8))
                let m = try #require(try c.next(timeout: 5))
                #expect(m["code"] == "invalid_request" && m["id"] == nil, "\(m.text)")
            }
            try c.send(Request.status.json(id: String(repeating: "i", count: 64)))
            let status = try #require(try c.next(timeout: 5))
            #expect(status["class"] == "STATUS" && status["id"]?.stringValue?.count == 64)
            try c.send(["cmd": "status"])
            #expect(try c.nextReply(timeout: 5)?.kind == .status)
            // Over 4 KiB in one line: ERROR, then closed.
            _ = try raw.nextReply(timeout: 5)
            _ = try raw.nextReply(timeout: 5)
            try raw.sendRaw(Array(repeating: UInt8(ascii: "x"), count: 5_000) + [0x0A])
            #expect(try raw.nextReply(timeout: 5)?.errorCode == "line_too_long")
            #expect(try raw.nextReply(timeout: 5) == nil)
        }

        @Test("one user's 29th client (of 32) is told why and closed: four slots stay for other users")
        func tooManyClients() throws {
            let daemon = try startDaemon(replayDelay: 20)
            defer { daemon.stop() }
            var clients: [ControlClient] = []
            for _ in 0..<28 { clients.append(try daemon.greeted()) }
            let extra = try daemon.client()
            #expect(try extra.nextReply(timeout: 5)?.errorCode == "too_many_for_user")
            #expect(try extra.nextReply(timeout: 5) == nil)
            clients.removeLast().close()
            let again = try daemon.clientOnceSlotFree()
            #expect(again != nil)
        }

        @Test("a client that sends thousands of requests and never reads is disconnected; others are served")
        func neverReads() throws {
            let daemon = try startDaemon(replayDelay: 20)
            defer { daemon.stop() }
            floodWithoutReading(try daemon.client())
            let other = try daemon.greeted()
            try other.send(["cmd": "status"])
            #expect(try other.nextReply(timeout: 5)?.kind == .status)
            let hungUp = Background.wait(seconds: 10) { readText(daemon.process.stderr).contains("unread") }
            #expect(hungUp, "\(readText(daemon.process.stderr).suffix(500))")
        }

        @Test("a user outside the allow-list is refused with ERROR")
        func refusedUser() throws {
            let daemon = try startDaemon(replayDelay: 20)
            defer { daemon.stop() }
            _ = try daemon.greeted()
            chmod(daemon.socket, 0o666)   // past the file mode: the credentials check must refuse
            chmod(daemon.directory, 0o755)
            let out = daemon.directory + "/nobody.out"
            let command = "setpriv --reuid=65534 --regid=65534 --clear-groups \(shellQuoted(posminictlExecutable)) status --json --socket \(shellQuoted(daemon.socket)) >\(shellQuoted(out)) 2>&1"
            let status = system(command)
            #expect(status != 0)
            #expect(readText(out).contains("access_denied"), "\(readText(out))")
            #expect(readText(daemon.process.stderr).contains("uid 65534"))
        }

        @Test("readiness, status and watchdog through NOTIFY_SOCKET; SIGTERM during an arm sends CANCELLED and STOPPING=1")
        func systemdNotify() throws {
            let directory = try temporaryDirectory()
            let listener = NotifyListener(path: directory + "/notify")
            let daemon = try startDaemon(replayDelay: 20, environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"])
            let ready = listener.receive(seconds: 15, until: "READY=1")
            #expect(ready.contains { $0.contains("READY=1") }, "\(ready)")
            #expect(ready.contains { $0.contains("STATUS=") })
            let pings = listener.receive(seconds: 3, until: "WATCHDOG=1")
            #expect(pings.contains("WATCHDOG=1"), "\(pings)")
            let c = try daemon.greeted()
            try c.send(["cmd": "arm"])
            #expect(try c.nextReply(timeout: 5)?.kind == .armed)
            kill(daemon.process.pid, SIGTERM)
            let ending = try c.nextReply(timeout: 5)
            #expect(ending?.kind == .cancelled && ending?["reason"] == "shutdown", "\(ending?.text ?? "nothing")")
            let stopping = listener.receive(seconds: 5, until: "STOPPING=1")
            #expect(stopping.contains("STOPPING=1"))
            daemon.stop()
            #expect(!daemon.process.running)
        }

        @Test("logs carry syslog priorities under journald; SIGHUP reloads the configuration or keeps the running one; clear_non_payment is logged as a warning")
        func journalAndReload() throws {
            let daemon = try startDaemon(replayDelay: 20, environment: ["JOURNAL_STREAM": "8:12345"],
                                         config: "log_level = info\nclear_non_payment = true\n")
            defer { daemon.stop() }
            _ = try daemon.greeted()
            let lines = readText(daemon.process.stderr).split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("<4>") && $0.contains("clear_non_payment is on") }, "\(lines)")
            #expect(!lines.isEmpty && lines.allSatisfy { $0.hasPrefix("<") }, "\(lines)")
            #expect(lines.contains { $0.hasPrefix("<6>") } && lines.contains { $0.hasPrefix("<4>") })
            kill(daemon.process.pid, SIGHUP)
            #expect(Background.wait(seconds: 5) { readText(daemon.process.stderr).contains("configuration reloaded") })
            write(Array("log_level = loud\n".utf8), to: daemon.directory + "/posminid.conf")
            kill(daemon.process.pid, SIGHUP)
            #expect(Background.wait(seconds: 5) { readText(daemon.process.stderr).contains("reload refused") },
                    "\(readText(daemon.process.stderr))")
            #expect(readText(daemon.process.stderr).contains("posminid.conf:1:"))
            // Still serving.
            let c = try daemon.greeted()
            try c.send(["cmd": "status"])
            #expect(try c.nextReply(timeout: 5)?.kind == .status)
        }

        @Test("socket activation: the socket systemd-socket-activate passes is adopted")
        func socketActivation() throws {
            let directory = try temporaryDirectory()
            let replay = try replayFile(delay: 20, directory: directory)
            let socket = directory + "/activated.sock"
            let process = try Background(["--replay", replay, "--test-key", "--state-directory", directory],
                                         environment: [:], directory: directory,
                                         prefix: ["systemd-socket-activate", "-l", socket])
            defer {
                kill(process.pid, SIGTERM)
                usleep(300_000)
            }
            var client: ControlClient?
            for _ in 0..<100 where client == nil {
                client = try? ControlClient(path: socket)
                if client == nil { usleep(50_000) }
            }
            let c = try #require(client)
            #expect(try c.nextReply(timeout: 10)?.kind == .version)
            #expect(readText(process.stderr).contains("socket systemd passed"), "\(readText(process.stderr))")
        }

        @Test("--replay of a recording at 500 Hz (or 7 999, or 192 001): the daemon refuses to start, exit 2, naming the file and the rate; no trap (500 Hz used to kill it with SIGILL)",
              arguments: [500, 7_999, 192_001] as [UInt32])
        func unsupportedReplay(rate: UInt32) throws {
            let directory = try temporaryDirectory()
            let wav = try wavClaiming(rate: rate)
            let socket = directory + "/refused.sock"
            // Bounded: a daemon that kept running without its reader would fail the test, not hang it.
            let command = ["timeout", "30", posminidExecutable, "--replay", wav, "--socket", socket, "--state-directory", directory, "--test-key"]
                .map(shellQuoted).joined(separator: " ")
            let status = (system(command + " >'\(directory)/out' 2>'\(directory)/err'") >> 8) & 0xFF
            let stderr = readText(directory + "/err")
            #expect(status == 2, "exit \(status): \(stderr)")
            #expect(stderr.contains("replay refused") && stderr.contains(wav), "\(stderr)")
            #expect(stderr.contains("unsupported sample rate \(rate) Hz"), "\(stderr)")
            #expect(access(socket, F_OK) != 0, "refused before serving")
        }

        @Test("configuration errors refuse to start, naming file and line; no key refuses to start, saying how to provide one")
        func refusals() throws {
            let directory = try temporaryDirectory()
            write(Array("socket = /tmp/x.sock\nflavour = mint\n".utf8), to: directory + "/bad.conf")
            let bad = try run(["--config", directory + "/bad.conf", "--test-key"])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("bad.conf:2: unknown key 'flavour'"), "\(bad.stderr)")
            let plain = try run(["--socket", directory + "/s.sock", "--state-directory", directory, "--key-file", directory + "/none"])
            #expect(plain.status == 2)
            #expect(plain.stderr.contains("no DUKPT key") && plain.stderr.contains("LoadCredentialEncrypted") && plain.stderr.contains("provision"),
                    "\(plain.stderr)")
            // The annotated example configuration is a valid file (of the defaults).
            let example = try run(["--config", packageRoot + "/examples/posminid.conf", "--socket", directory + "/e.sock", "--log-level", "error",
                                   "--state-directory", directory, "--key-file", directory + "/none"])
            #expect(example.status == 2 && example.stderr.contains("no DUKPT key") && !example.stderr.contains("refused"), "\(example.stderr)")
            let version = try run(["--version"])
            #expect(version.stdout.contains(PosminiProtocol.release))
        }

        @Test("one version everywhere: debian/changelog's newest entry, posminid --version, the protocol's release and the Python client's")
        func versionsAgree() throws {
            let changelog = readText(packageRoot + "/debian/changelog").split(separator: "\n").first ?? ""
            // "posminid (0.6.0) unstable; urgency=medium"
            let parts = changelog.split(separator: "(", maxSplits: 1)
            let entry = parts.count == 2 ? String(parts[1].prefix { $0 != ")" }) : ""
            #expect(changelog.hasPrefix("posminid (") && entry == PosminiProtocol.release, "\(changelog)")
            let version = try run(["--version"])
            #expect(version.stdout.split(separator: "\n").first.map(String.init) == PosminiProtocol.release, "\(version.stdout)")
            for (file, line) in [("clients/python/pyproject.toml", "version = \"\(entry)\""),
                                 ("clients/python/posmini/__init__.py", "__version__ = \"\(entry)\""),
                                 ("clients/python/posmini_build.py", "VERSION = \"\(entry)\"")] {
                #expect(readText(packageRoot + "/" + file).split(separator: "\n").contains { $0 == line }, "\(file)")
            }
            #expect(readText(packageRoot + "/debian/source/format") == "3.0 (native)\n")
        }

        @Test("the systemd units pass systemd-analyze verify with ExecStart at the built binary")
        func units() throws {
            let directory = try temporaryDirectory()
            let service = readText(packageRoot + "/systemd/posminid.service")
                .replacingOccurrences("ExecStart=/usr/sbin/posminid", "ExecStart=\(posminidExecutable)")
            #expect(service.contains("ExecStart=\(posminidExecutable)"))
            write(Array(service.utf8), to: directory + "/posminid.service")
            write(readFile(packageRoot + "/systemd/posminid.socket") ?? [], to: directory + "/posminid.socket")
            let out = directory + "/verify.out"
            let status = system("cd \(shellQuoted(directory)) && systemd-analyze verify --man=no ./posminid.socket ./posminid.service >\(shellQuoted(out)) 2>&1")
            #expect(status == 0, "\(readText(out))")
            let security = directory + "/security.out"
            _ = system("cd \(shellQuoted(directory)) && systemd-analyze security --offline=true ./posminid.service >\(shellQuoted(security)) 2>&1")
            let text = readText(security)
            let score = text.split(separator: "\n").first { $0.contains("Overall exposure level") }
                .flatMap { line in line.split(separator: " ").compactMap { Double($0) }.first }
            #expect(score != nil && score! <= 1.5, "\(text.suffix(300))")
            // No core files from the service, whatever the system's default limit.
            #expect(service.contains("\nLimitCORE=0\n"))
        }
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

/// Sends status requests without ever reading the replies (hundreds of bytes each, far beyond
/// the socket buffers and the daemon's queue), until the daemon hangs up, 20 000 are sent, or
/// 20 s pass.
func floodWithoutReading(_ client: ControlClient) {
    var batch: [UInt8] = []
    for _ in 0..<200 { batch += Array((#"{"cmd":"status"}"# + "\n").utf8) }
    var sent = 0
    let deadline = monotonicNow() + 20
    while sent < 20_000 && monotonicNow() < deadline {
        do {
            try client.sendRaw(batch, nonBlocking: true)
            sent += 200
        } catch {
            guard error.description.contains("Resource temporarily unavailable") else { return }
            usleep(2_000)
        }
    }
}
