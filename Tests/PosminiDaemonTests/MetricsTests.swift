import PosminiClient
import PosminiProtocol
import Testing
import TestSupport
import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Issue 25: the metrics, through `posminictl metrics`, checked by Prometheus's own promtool.
    @Suite("metrics: METRICS and posminictl metrics, checked by promtool")
    struct MetricsTests: CommandTesting {
        typealias Daemon = DaemonTests.Daemon

        /// How many times `needle` occurs in `text`.
        static func occurrences(_ needle: String, in text: String) -> Int {
            let n = Array(needle.utf8), t = Array(text.utf8)
            guard !n.isEmpty, t.count >= n.count else { return 0 }
            return (0...(t.count - n.count)).filter { i in t[i..<(i + n.count)].elementsEqual(n) }.count
        }

        /// Every `posminid_…` metric name in `text`.
        static func metricNames(in text: String) -> Set<String> {
            let bytes = Array(text.utf8), prefix = Array("posminid_".utf8)
            var names: Set<String> = []
            var i = 0
            while i + prefix.count <= bytes.count {
                if bytes[i..<(i + prefix.count)].elementsEqual(prefix) {
                    var j = i + prefix.count
                    while j < bytes.count, (bytes[j] >= 97 && bytes[j] <= 122) || bytes[j] == 95 || (bytes[j] >= 48 && bytes[j] <= 57) { j += 1 }
                    names.insert(String(decoding: bytes[i..<j], as: UTF8.self))
                    i = j
                } else {
                    i += 1
                }
            }
            return names
        }

        /// The samples of `text`: each line that is not a comment, split at its last space.
        static func samples(_ text: String) -> [String: Double] {
            var out: [String: Double] = [:]
            for line in text.split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " ") else { continue }
                out[String(line[..<space])] = Double(line[line.index(after: space)...])
            }
            return out
        }

        @Test("after a card, a failed swipe and a click: promtool finds no problem, the counts equal STATUS's, and no card data is in the text")
        func exposition() throws {
            let directory = try temporaryDirectory()
            let socket = directory + "/posmini.sock"
            let process = try Background(["--test-key", "--simulate", "--simulate-manual", "--socket", socket, "--state-directory", directory],
                                         environment: [:], directory: directory)
            let daemon = Daemon(process: process, socket: socket, directory: directory)
            defer { daemon.stop() }
            let c = try daemon.greeted()
            func next() throws -> Reply? {
                while let m = try c.nextReply(timeout: 20) { if m.kind != .reader { return m } }
                return nil
            }
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: "M-1"))
            #expect(try next()?.kind == .armed)
            try c.send(Request.simulate(.swipe(card: "visa")))
            #expect(try next()?.kind == .simulated)
            #expect(try next()?.kind == .card)
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: "M-2"))
            #expect(try next()?.kind == .armed)
            for card in ["partial", "noise", "amex"] {
                try c.send(Request.simulate(.swipe(card: card)))
                #expect(try next()?.kind == .simulated)
                if card == "partial" { #expect(try next()?.kind == .swipeFailed) }
            }
            #expect(try next()?.kind == .card)
            try c.send(Request.arm(reader: "nonexistent", timeout: 5, reference: nil))
            #expect(try next()?["code"] == "unknown_reader")
            try c.send(Request.status)
            guard case .status(let status)? = try next() else { Issue.record("no STATUS"); return }

            let out = directory + "/metrics.prom"
            let status1 = system("\(shellQuoted(posminictlExecutable)) metrics --socket \(shellQuoted(socket)) >\(shellQuoted(out)) 2>&1")
            #expect(status1 == 0)
            let text = readText(out)
            let check = directory + "/promtool.out"
            let promtool = system("promtool check metrics <\(shellQuoted(out)) >\(shellQuoted(check)) 2>&1")
            #expect(promtool == 0 && readText(check).isEmpty, "promtool: \(readText(check))")

            let s = Self.samples(text)
            let reader = "reader=\"simulator\""
            #expect(s["posminid_swipes_total{\(reader),result=\"read\"}"] == Double(status.counters.goodReads))
            #expect(s["posminid_swipes_total{\(reader),result=\"failed\"}"] == Double(status.counters.failedReads.values.reduce(0, +)))
            #expect(s["posminid_failed_reads_total{\(reader),reason=\"partialSwipe\"}"] == 1)
            #expect(s["posminid_ignored_bursts_total{\(reader)}"] == Double(status.counters.noiseBursts))
            #expect(s["posminid_cards_published_total"] == 2)
            #expect(s["posminid_protocol_errors_total{code=\"unknown_reader\"}"] == 1)
            #expect(s["posminid_reader_present{\(reader)}"] == 1)
            #expect(s["posminid_swipe_snr_decibels_count{\(reader)}"] == Double(status.counters.swipes))
            #expect(s["posminid_dukpt_key_info{scheme=\"aes128-dukpt\",test_key=\"true\"}"] == 1)
            let left = try #require(s["posminid_dukpt_transactions_remaining"])
            #expect(left > 2_000_000_000 && left < 2_448_023_842, "the AES key has used a few of its 2 448 023 842")
            #expect(s["posminid_build_info{version=\"\(PosminiProtocol.release)\",protocol=\"1.4\"}"] == 1)
            // SIGHUP reloads the configuration; the counts go on.
            kill(process.pid, SIGHUP)
            #expect(Background.wait(seconds: 30) { readText(process.stderr).contains("configuration reloaded") || readText(process.stderr).contains("reload refused") },
                    "\(readText(process.stderr))")
            #expect(system("\(shellQuoted(posminictlExecutable)) metrics --socket \(shellQuoted(socket)) >\(shellQuoted(out)) 2>&1") == 0)
            let reloaded = Self.samples(readText(out))
            #expect(reloaded["posminid_swipes_total{\(reader),result=\"read\"}"] == Double(status.counters.goodReads), "kept across SIGHUP")
            #expect(reloaded["posminid_cards_published_total"] == 2)
            // What the alert rules (contrib/prometheus) use is there.
            for name in ["posminid_swipes_total{", "posminid_reader_present{", "posminid_jack_flaps_total{", "posminid_dukpt_transactions_remaining "] {
                #expect(text.contains("\n" + name), "\(name) in the exposition")
            }
            // The Grafana dashboard parses, and every metric it names is in the exposition.
            let dashboard = packageRoot + "/contrib/grafana/posminid.json"
            #expect(system("python3 -c 'import json, sys; json.load(open(sys.argv[1]))' \(shellQuoted(dashboard))") == 0)
            let named = Self.metricNames(in: readText(dashboard))
            #expect(named.count >= 8, "\(named)")
            for name in named {
                let family = ["_bucket", "_sum", "_count"].reduce(name) { n, suffix in
                    n.hasSuffix(suffix) && text.contains("# TYPE \(n.dropLast(suffix.count)) histogram") ? String(n.dropLast(suffix.count)) : n
                }
                #expect(text.contains("# TYPE \(family) "), "the dashboard's \(name) is not in the exposition")
            }
            // No card data: not the PANs, not the names, not a track's text.
            for secret in ["4111111111111111", "4111 1111", "378282246310005", "CARDHOLDER", "AMEX/TEST", "%B", "=2812", "^"] {
                #expect(!text.contains(secret), "\(secret) in the exposition")
            }
        }
    

        @Test("metrics_textfile: a missing directory is said once, and once again when it is there; the file (0644) is read by a real node_exporter through a link, as installed, with the daemon's counts and no scrape error")
        func textfile() throws {
            let directory = try temporaryDirectory()
            let run = directory + "/run", textfiles = directory + "/node-exporter"
            #expect(mkdir(textfiles, 0o755) == 0)
            // As systemd-tmpfiles lays it out (systemd/posminid-metrics.conf): a link in the
            // collector's directory to the file in the daemon's runtime directory.
            #expect(symlink(run + "/metrics.prom", textfiles + "/posminid.prom") == 0)
            let config = directory + "/posminid.conf"
            write(Array("metrics_textfile = \(run)/metrics.prom\nmetrics_interval = 1\n".utf8), to: config)
            let socket = directory + "/posmini.sock"
            let process = try Background(["--test-key", "--simulate", "--simulate-manual", "--socket", socket, "--state-directory", directory,
                                          "--config", config], environment: [:], directory: directory)
            let daemon = Daemon(process: process, socket: socket, directory: directory)
            defer { daemon.stop() }
            let c = try daemon.greeted()
            let refusal = "cannot write the metrics file"
            #expect(Background.wait(seconds: 30) { readText(process.stderr).contains(refusal) }, "\(readText(process.stderr))")
            #expect(mkdir(run, 0o755) == 0)
            #expect(Background.wait(seconds: 30) { readText(process.stderr).contains("written again") }, "\(readText(process.stderr))")
            #expect(Self.occurrences(refusal, in: readText(process.stderr)) == 1, "said once")
            func next() throws -> Reply? {
                while let m = try c.nextReply(timeout: 20) { if m.kind != .reader { return m } }
                return nil
            }
            try c.send(Request.arm(reader: "simulator", timeout: 60, reference: "T-1"))
            #expect(try next()?.kind == .armed)
            for card in ["partial", "visa"] {
                try c.send(Request.simulate(.swipe(card: card)))
                #expect(try next()?.kind == .simulated)
                #expect(try next()?.kind == (card == "visa" ? .card : .swipeFailed))
            }
            try c.send(Request.status)
            guard case .status(let status)? = try next() else { Issue.record("no STATUS"); return }
            // The last write is at stop: the file holds the final counts.
            daemon.stop()
            #expect(!process.running)
            var st = stat()
            #expect(stat(run + "/metrics.prom", &st) == 0 && st.st_mode & 0o777 == 0o644)
            let promtoolOut = directory + "/promtool-file.out"
            let promtool = system("promtool check metrics <\(shellQuoted(run + "/metrics.prom")) >\(shellQuoted(promtoolOut)) 2>&1")
            #expect(promtool == 0 && readText(promtoolOut).isEmpty, "promtool on the file: \(readText(promtoolOut))")
            let ownFile = Self.samples(readText(run + "/metrics.prom"))
            #expect(ownFile["posminid_swipes_total{reader=\"simulator\",result=\"read\"}"] == Double(status.counters.goodReads))
            #expect(ownFile["posminid_swipes_total{reader=\"simulator\",result=\"failed\"}"] == 1)
            #expect(FileBytes.entries(ofDirectory: run) == ["metrics.prom"], "no temporary file left behind")

            // node_exporter 1.5 on loopback, a port of its own, reading the link.
            let port = 20_000 + Int(getpid() % 20_000)
            let exporterLog = directory + "/node_exporter.log", exporterPid = directory + "/node_exporter.pid"
            let command = "prometheus-node-exporter --collector.disable-defaults --collector.textfile --collector.textfile.directory=\(shellQuoted(textfiles)) --web.listen-address=127.0.0.1:\(port)"
            _ = system("sh -c \(shellQuoted("(exec " + command + ") >'\(exporterLog)' 2>&1 & echo $! >'\(exporterPid)'"))")
            let exporter = Int32(readText(exporterPid).split(separator: "\n").first ?? "") ?? -1
            defer { if exporter > 0 { kill(exporter, SIGTERM) } }
            let scraped = directory + "/scraped.txt"
            var answered = false
            for _ in 0..<200 where !answered {
                answered = system("curl -sf http://127.0.0.1:\(port)/metrics >\(shellQuoted(scraped)) 2>/dev/null") == 0
                if !answered { usleep(50_000) }
            }
            #expect(answered, "node_exporter: \(readText(exporterLog))")
            let exported = Self.samples(readText(scraped))
            #expect(exported["node_textfile_scrape_error"] == 0, "\(readText(exporterLog))")
            #expect(exported["posminid_swipes_total{reader=\"simulator\",result=\"read\"}"] == Double(status.counters.goodReads))
            #expect(exported["posminid_swipes_total{reader=\"simulator\",result=\"failed\"}"] == 1)
            #expect(exported["posminid_cards_published_total"] == 1)
            #expect(exported.keys.contains { $0.hasPrefix("node_textfile_mtime_seconds{file=") && $0.contains("posminid.prom") })
        }

        @Test("as installed: tmpfiles links node_exporter's posminid.prom to the file the shipped posminid.conf names, in the unit's runtime directory (0755, kept at stop)")
        func installedLayout() throws {
            let root = try temporaryDirectory()
            let out = root + "/tmpfiles.out"
            let status = system("systemd-tmpfiles --create --root=\(shellQuoted(root)) \(shellQuoted(packageRoot + "/systemd/posminid-metrics.conf")) >\(shellQuoted(out)) 2>&1")
            #expect(status == 0, "\(readText(out))")
            var buffer = [CChar](repeating: 0, count: 512)
            let n = readlink(root + "/var/lib/prometheus/node-exporter/posminid.prom", &buffer, buffer.count - 1)
            #expect(n > 0)
            let target = String(decoding: buffer[0..<max(0, n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(target == "/run/posminid/metrics.prom")
            let example = readText(packageRoot + "/examples/posminid.conf").split(separator: "\n")
            #expect(example.contains("metrics_textfile = \(target)"), "the shipped configuration writes where the link points")
            let unit = readText(packageRoot + "/systemd/posminid.service").split(separator: "\n")
            #expect(unit.contains("RuntimeDirectory=posminid") && unit.contains("RuntimeDirectoryMode=0755") && unit.contains("RuntimeDirectoryPreserve=yes"))
        }

        @Test("the alert rules pass promtool check rules, and promtool test rules: each alert fires where it must and nowhere else")
        func alertRules() throws {
            let directory = packageRoot + "/contrib/prometheus"
            let out = try temporaryDirectory() + "/promtool.out"
            let check = system("cd \(shellQuoted(directory)) && promtool check rules posminid.rules.yml >\(shellQuoted(out)) 2>&1")
            #expect(check == 0 && readText(out).contains("SUCCESS: 5 rules found"), "\(readText(out))")
            let tests = system("cd \(shellQuoted(directory)) && promtool test rules posminid.rules.test.yml >\(shellQuoted(out)) 2>&1")
            #expect(tests == 0, "\(readText(out))")
            // Every metric the rules name is one the daemon writes (or node_exporter's own).
            let rules = readText(directory + "/posminid.rules.yml")
            for name in ["posminid_swipes_total", "posminid_reader_present", "posminid_jack_flaps_total",
                         "posminid_dukpt_transactions_remaining", "node_textfile_mtime_seconds"] {
                #expect(rules.contains(name))
            }
        }
    }
}
