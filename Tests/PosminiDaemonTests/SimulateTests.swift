import PosminiClient
import PosminiProtocol
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// The test mode for integrators: `posminid --test-key --simulate`, `posminictl simulate`,
    /// and the README's "Testing your POS app without a reader" run as written.
    @Suite("test mode: posminid --test-key --simulate")
    struct SimulateTests: CommandTesting {
        typealias Daemon = DaemonTests.Daemon

        func start(_ extra: [String] = []) throws -> Daemon {
            let directory = try temporaryDirectory()
            let socket = directory + "/posmini.sock"
            let process = try Background(["--test-key", "--simulate", "--socket", socket, "--state-directory", directory] + extra,
                                         environment: [:], directory: directory)
            return Daemon(process: process, socket: socket, directory: directory)
        }

        /// The next message that is not a watcher's (READER) line; nil after 20 s.
        func next(_ c: ControlClient) throws -> Reply? {
            while let m = try c.nextReply(timeout: 20) {
                if m.kind != .reader { return m }
            }
            return nil
        }

        @Test("each arm plays the next test card, read by the decoder and encrypted under the test key: Visa, then Mastercard")
        func cardPerArm() throws {
            let daemon = try start()
            defer { daemon.stop() }
            let c = try daemon.client()
            #expect(try c.nextReply(timeout: 10)?.kind == .version)
            guard case .readers(let readers)? = try c.nextReply(timeout: 10) else { Issue.record("no READERS"); return }
            #expect(readers.map(\.id) == ["simulator"] && readers.first?.source == .simulator)
            for (reference, iin) in [("sale-1", "41111111"), ("sale-2", "55555555")] {
                try c.send(Request.arm(reader: nil, timeout: 30, reference: reference))
                #expect(try next(c)?.kind == .armed)
                let card = try #require(try next(c))
                #expect(card.kind == .card && card["iin"] == .string(iin) && card["test_key"] == true && card["reference"] == .string(reference),
                        "\(card.text)")
            }
            #expect(readText(daemon.process.stderr).contains("TEST MODE"))
        }

        @Test("simulate on demand (--simulate-manual): a partial swipe fails, a plug click sends nothing, loyalty is nonPayment; remove ends the arm; insert; exhaust-key refuses arms")
        func onDemand() throws {
            let daemon = try start(["--simulate-manual"])
            defer { daemon.stop() }
            let c = try daemon.greeted()
            /// The reply, as it came (with its id).
            func simulate(_ action: SimulateAction) throws -> JSONValue? {
                try c.send(Request.simulate(action).json(id: "s"))
                return try c.next(timeout: 20)
            }
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: "R"))
            #expect(try next(c)?.kind == .armed)
            let partial = try simulate(.swipe(card: "partial"))
            #expect(partial?["class"] == "SIMULATED" && partial?["card"] == "partial" && partial?["id"] == "s", "\(partial?.text ?? "")")
            let failed = try next(c)
            #expect(failed?.kind == .swipeFailed && failed?["reason"] == "partialSwipe", "\(failed?.text ?? "")")
            // A click, then a card: the card is the next message (the click sent nothing).
            _ = try simulate(.swipe(card: "noise"))
            #expect(try simulate(.swipe(card: "loyalty"))?["card"] == "loyalty", "the click sent nothing before this reply")
            let loyalty = try next(c)
            #expect(loyalty?.kind == .card && loyalty?["card_type"] == "nonPayment", "\(loyalty?.text ?? "")")
            try c.send(Request.status)
            guard case .status(let status)? = try next(c) else { Issue.record("no STATUS"); return }
            #expect(status.counters.noiseBursts >= 1 && status.counters.failedReads == ["partialSwipe": 1], "\(status.counters)")
            // Pulled out while armed.
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: "S"))
            #expect(try next(c)?.kind == .armed)
            // The arm ends as the reader goes, before the reply that says it went.
            let removed = try simulate(.remove)
            #expect(removed?["class"] == "READER_REMOVED" && removed?["reference"] == "S", "\(removed?.text ?? "")")
            #expect(try next(c)?.kind == .simulated)
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: nil))
            #expect(try next(c)?["code"] == "unknown_reader")
            #expect(try simulate(.insert)?["class"] == "SIMULATED")
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: "T"))
            #expect(try next(c)?.kind == .armed)
            _ = try simulate(.swipe(card: "amex"))
            let amex = try next(c)
            #expect(amex?.kind == .card && amex?["iin"] == "378282" && amex?["name"] == "AMEX/TEST CARD", "\(amex?.text ?? "")")
            #expect(try simulate(.exhaustKey)?["class"] == "SIMULATED")
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: nil))
            #expect(try next(c)?["code"] == "key_exhausted")
            #expect(try simulate(.swipe(card: "gold"))?["code"] == "invalid_request")
        }

        @Test("refused: simulate to a daemon not in test mode is not_permitted; --simulate without --test-key does not start")
        func refusals() throws {
            let plain = try DaemonTests().startDaemon(replayDelay: 20)
            defer { plain.stop() }
            let c = try plain.greeted()
            try c.send(Request.simulate(.swipe(card: nil)))
            #expect(try c.nextReply(timeout: 10)?["code"] == "not_permitted")
            let directory = try temporaryDirectory()
            let refused = try run(["--simulate", "--socket", directory + "/s.sock", "--state-directory", directory])
            #expect(refused.status == 2 && refused.stderr.contains("--simulate needs --test-key"), "\(refused.stderr)")
        }

        @Test("without root: a developer's test daemon and posminictl run as one unprivileged user, which the daemon lets in as a POS user; another user is refused")
        func withoutRoot() throws {
            let directory = try temporaryDirectory()
            chmod(directory, 0o777)
            let socket = directory + "/posmini.sock", out = directory + "/out"
            let script = """
                \(shellQuoted(posminidExecutable)) --test-key --simulate --socket \(shellQuoted(socket)) --state-directory \(shellQuoted(directory + "/state")) >\(shellQuoted(directory + "/daemon.log")) 2>&1 &
                \(shellQuoted(posminictlExecutable)) arm --socket \(shellQuoted(socket)) --wait 15 --timeout 30 --reference dev-1
                """
            let status = system("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c \(shellQuoted(script)) >\(shellQuoted(out)) 2>&1")
            #expect(status == 0, "\(readText(out)) \(readText(directory + "/daemon.log"))")
            #expect(readText(out).contains("card on simulator, payment, 411111******1111"), "\(readText(out))")
            // Another unprivileged user is not the daemon's.
            let other = system("setpriv --reuid=65533 --regid=65533 --clear-groups \(shellQuoted(posminictlExecutable)) status --socket \(shellQuoted(socket)) >\(shellQuoted(out)) 2>&1")
            #expect(other != 0)
            _ = system("pkill -u 65534 -f 'posminid --test-key --simulate --socket \(socket)'")
        }

        /// The first `sh` block after the README's "Testing your POS app without a reader".
        static func readmeCommands() -> String? {
            let lines = readText(packageRoot + "/README.md").split(separator: "\n", omittingEmptySubsequences: false)
            guard let heading = lines.firstIndex(of: "## Testing your POS app without a reader"),
                  let open = lines[heading...].firstIndex(of: "```sh"),
                  let close = lines[(open + 1)...].firstIndex(of: "```") else { return nil }
            return lines[(open + 1)..<close].joined(separator: "\n") + "\n"
        }

        @Test("the README's commands, as written, in the source tree: the daemon, a decrypted test sale, pip install and a sale from Python, each simulate action")
        func readme() throws {
            let commands = try #require(Self.readmeCommands())
            let directory = try temporaryDirectory()
            write(Array(commands.utf8), to: directory + "/commands.sh")
            let bin = String(posminidExecutable.dropLast("/posminid".count))
            let out = directory + "/out"
            _ = system("rm -rf /tmp/posmini-venv")
            let status = system("cd \(shellQuoted(packageRoot)) && PATH=\(shellQuoted(bin)):$PATH sh -e \(shellQuoted(directory + "/commands.sh")) >\(shellQuoted(out)) 2>&1")
            // Whatever happened, no daemon of this test is left behind.
            _ = system("pkill -f 'posminid --test-key --simulate --socket /tmp/posmini.sock' 2>/dev/null")
            let output = readText(out)
            #expect(status == 0, "\(output)")
            #expect(output.contains("track 1: %B4111111111111111^CARDHOLDER/TEST A^2812101987654321000000?"), "\(output)")
            #expect(output.contains("MAC: ok"))
            #expect(output.contains("simulator: swiped partial") && output.contains("simulator: exhaust key"), "\(output)")
            #expect(readText("/tmp/sale2.txt").contains("card: payment 555555******4444 expires 2812 (test key)"), "\(readText("/tmp/sale2.txt"))")
            #expect(output.contains("\"ksn\":\"1234567890123456"), "the Python sale's KSN: \(output)")
        }

        @Test("the Python client library (clients/python), pip-installed in a virtual environment, against the test-mode daemon: sales, prompts, the cancel after the card, removal, a daemon restart mid-sale, reconnecting watch")
        func pythonLibrary() throws {
            let directory = try temporaryDirectory()
            let venv = directory + "/venv"
            let out = directory + "/out"
            let install = system("python3 -m venv \(shellQuoted(venv)) && \(shellQuoted(venv + "/bin/pip")) install -q --disable-pip-version-check \(shellQuoted(packageRoot + "/clients/python")) >\(shellQuoted(out)) 2>&1")
            #expect(install == 0, "\(readText(out))")
            let status = system("cd \(shellQuoted(packageRoot + "/Tests/Harness")) && POSMINID=\(shellQuoted(posminidExecutable)) timeout 300 \(shellQuoted(venv + "/bin/python")) -m unittest -v test_posmini_client >\(shellQuoted(out)) 2>&1")
            let output = readText(out)
            #expect(status == 0, "\(output)")
            #expect(output.contains("Ran 6 tests") && output.contains("OK"), "\(output)")
        }
    }
}
