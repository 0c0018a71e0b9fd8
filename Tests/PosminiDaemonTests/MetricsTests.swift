import PosminiClient
import PosminiProtocol
import Testing
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Issue 25: the metrics, through `posminictl metrics`, checked by Prometheus's own promtool.
    @Suite("metrics: METRICS and posminictl metrics, checked by promtool")
    struct MetricsTests: CommandTesting {
        typealias Daemon = DaemonTests.Daemon

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
            // No card data: not the PANs, not the names, not a track's text.
            for secret in ["4111111111111111", "4111 1111", "378282246310005", "CARDHOLDER", "AMEX/TEST", "%B", "=2812", "^"] {
                #expect(!text.contains(secret), "\(secret) in the exposition")
            }
        }
    }
}
