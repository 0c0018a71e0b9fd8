#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Magstripe
public import PosminiProtocol
public import SwipeDecoder

/// Issue 25: the figures a fleet's Prometheus wants of each reader, counted by the daemon's hub from the
/// reader's events (so they outlive its capture sessions, and a jack watch that restarts), in
/// the hub's own turn: nothing here runs on the capture or decoder threads.
public struct ReaderMetrics: Sendable {
    public var read = 0, failed = 0
    public var failedByReason: [String: Int] = [:]
    /// By track ("1", "2", "3"; "none" when no format framed) and status code.
    public var tracks: [String: [String: Int]] = [:]
    public var corrections = 0
    public var ignoredBursts = 0
    /// Wall-clock seconds of the last swipe's result.
    public var lastSwipe: Double?
    public var speed = Histogram(bounds: MetricBuckets.speed)
    public var snr = Histogram(bounds: MetricBuckets.snr)
    public var peak = Histogram(bounds: MetricBuckets.peak)
    public var jitter = Histogram(bounds: MetricBuckets.jitter)
    public var latency = Histogram(bounds: MetricBuckets.latency)
    /// Jack flaps since start, whatever the jack watch reports: its own count starts again at
    /// 0 when it restarts (a device that went and came back), and this one never goes down.
    public private(set) var jackFlaps = 0
    private var lastJackCount = 0

    public init() {}

    /// The jack watch's count now: what it added since the last report (all of it, when the
    /// count went down because the watch started again).
    public mutating func jackCount(_ count: Int) {
        jackFlaps += count >= lastJackCount ? count - lastJackCount : count
        lastJackCount = count
    }

    /// A swipe's result, decided at stream sample `decidedAt` of a stream at `sampleRate`.
    public mutating func record(_ swipe: Swipe, sampleRate: Int?, at wallClock: Double) {
        if swipe.readTracks.isEmpty {
            failed += 1
            failedByReason[swipe.problem?.rawValue ?? "unreadable", default: 0] += 1
        } else {
            read += 1
        }
        for track in swipe.tracks {
            let name = track.format.map { String($0.rawValue) } ?? "none"
            tracks[name, default: [:]][track.status.code, default: 0] += 1
            corrections += track.corrections
        }
        lastSwipe = wallClock
        if let mean = swipe.speed?.mean { speed.observe(mean / 100) }
        snr.observe(swipe.quality.snrDB)
        peak.observe(swipe.quality.peakDBFS)
        jitter.observe(swipe.quality.jitter)
        if let decidedAt = swipe.decidedAt, let sampleRate, sampleRate > 0 {
            latency.observe(max(0, Double(decidedAt) / Double(sampleRate) - swipe.end))
        }
    }
}

/// The fixed buckets of the per-reader histograms (docs/METRICS.md).
public enum MetricBuckets {
    /// Swipe speed, m/s: a crawl, a slow hand, the readers' rated range, too fast for 44.1 kHz.
    public static let speed: [Double] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 2.5]
    /// Median pulse over noise, dB: the decoder's `noisy` lies under 14.
    public static let snr: [Double] = [6, 10, 14, 17, 20, 25, 30, 40]
    /// Peak, dBFS: `weakSignal` under -40, diagnose warns under -34, clipping at 0.
    public static let peak: [Double] = [-60, -50, -40, -34, -28, -20, -12, -6, -1, 0]
    /// RMS transition jitter, fraction of a cell: the decoder fails at 0.18.
    public static let jitter: [Double] = [0.02, 0.05, 0.08, 0.1, 0.14, 0.18, 0.25]
    /// From the swipe's last sample to its result, seconds of audio.
    public static let latency: [Double] = [0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1, 2]
}

/// The daemon-wide counts the metrics add to STATUS's.
public struct DaemonMetrics: Sendable {
    public var cardsPublished = 0
    public var armTimeouts = 0
    public var protocolErrors: [String: Int] = [:]
    /// Wall-clock seconds at the hub's start.
    public let startTime = MetricsClock.now()

    public init() {}
}

public enum MetricsClock {
    public static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_REALTIME, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}

/// The exposition: everything from values the hub holds, no card data (a label value is a
/// reader's id, name or source, a reason, a track number or a status code).
public enum MetricsText {
    /// The `reader` label: the reader's id, with its USB serial (if the id holds one) replaced
    /// by a hash of it, since node_exporter serves without authentication.
    public static func readerLabel(_ info: ReaderInfo) -> String {
        guard let serial = info.serial, !serial.isEmpty, info.id.contains(serial) else { return info.id }
        return info.id.replacing(serial, with: "serial-" + fnv1a(serial))
    }

    /// FNV-1a, 64 bits, as 12 hex digits: stable across runs (Swift's `Hasher` is seeded).
    static func fnv1a(_ s: String) -> String {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        let hex = String(h, radix: 16)
        return String((String(repeating: "0", count: max(0, 16 - hex.count)) + hex).prefix(12))
    }

    public static func render(status: StatusReport, readers: [String: ReaderMetrics], capture: [String: (overruns: Int, dropped: Int, gaps: Int)],
                       daemon: DaemonMetrics, transactionsLeft: Int?) -> String {
        var e = Exposition()
        e.family("posminid_build_info", .gauge, help: "The daemon's release and protocol version (value 1).")
        e.sample("posminid_build_info", ["version": PosminiProtocol.release, "protocol": "\(PosminiProtocol.major).\(PosminiProtocol.minor)"], 1)
        e.family("posminid_start_time_seconds", .gauge, help: "When the daemon started, seconds since the epoch.")
        e.sample("posminid_start_time_seconds", [:], daemon.startTime.rounded())
        e.family("posminid_clients", .gauge, help: "Clients connected to the socket.")
        e.sample("posminid_clients", [:], Double(status.clients))
        e.family("posminid_armed", .gauge, help: "Readers armed by a client.")
        e.sample("posminid_armed", [:], Double(status.armed))
        e.family("posminid_cards_published_total", .counter, help: "Cards sent to the client that armed the reader.")
        e.sample("posminid_cards_published_total", [:], Double(daemon.cardsPublished))
        e.family("posminid_arm_timeouts_total", .counter, help: "Arms that ended with TIMEOUT.")
        e.sample("posminid_arm_timeouts_total", [:], Double(daemon.armTimeouts))
        e.family("posminid_protocol_errors_total", .counter, help: "Requests and connections refused, by ERROR code.")
        for (code, n) in daemon.protocolErrors.sorted(by: { $0.key < $1.key }) {
            e.sample("posminid_protocol_errors_total", ["code": code], Double(n))
        }
        e.family("posminid_resident_memory_bytes", .gauge, help: "The daemon's resident memory.")
        e.sample("posminid_resident_memory_bytes", [:], Double(status.process.residentKiB * 1_024))
        e.family("posminid_open_fds", .gauge, help: "The daemon's open file descriptors.")
        e.sample("posminid_open_fds", [:], Double(status.process.descriptors))

        // One row per reader: its description, its label, its counts (none yet: zeros).
        let rows = status.readers.map { (info: $0, label: [("reader", readerLabel($0))], m: readers[$0.id] ?? ReaderMetrics()) }
        func perReader(_ name: String, _ kind: Exposition.Kind, _ help: String, _ value: (ReaderInfo, ReaderMetrics) -> Double) {
            e.family(name, kind, help: help)
            for r in rows { e.sample(name, r.label, value(r.info, r.m)) }
        }
        e.family("posminid_reader_info", .gauge, help: "A reader the daemon knows (value 1).")
        for r in rows {
            e.sample("posminid_reader_info", r.label + [("name", r.info.name), ("source", r.info.source.rawValue), ("sound_card", r.info.card ?? "")], 1)
        }
        perReader("posminid_reader_present", .gauge, "1 while the reader is plugged in.") { i, _ in i.present ? 1 : 0 }
        perReader("posminid_reader_capturing", .gauge, "1 while the reader's audio is captured.") { i, _ in i.capturing ? 1 : 0 }
        e.family("posminid_swipes_total", .counter, help: "Swipes, by result: read (a track read) or failed.")
        for r in rows {
            e.sample("posminid_swipes_total", r.label + [("result", "read")], Double(r.m.read))
            e.sample("posminid_swipes_total", r.label + [("result", "failed")], Double(r.m.failed))
        }
        e.family("posminid_failed_reads_total", .counter, help: "Failed swipes by the reason given to the merchant.")
        for r in rows {
            for (reason, n) in r.m.failedByReason.sorted(by: { $0.key < $1.key }) {
                e.sample("posminid_failed_reads_total", r.label + [("reason", reason)], Double(n))
            }
        }
        e.family("posminid_track_reads_total", .counter, help: "Tracks decoded, by track and status (ok, or why not).")
        for r in rows {
            for (track, statuses) in r.m.tracks.sorted(by: { $0.key < $1.key }) {
                for (code, n) in statuses.sorted(by: { $0.key < $1.key }) {
                    e.sample("posminid_track_reads_total", r.label + [("track", track), ("status", code)], Double(n))
                }
            }
        }
        perReader("posminid_bit_corrections_total", .counter, "Bits single-error correction flipped.") { _, m in Double(m.corrections) }
        perReader("posminid_ignored_bursts_total", .counter, "Stretches of sound without a card (clicks, knocks, noise).") { _, m in Double(m.ignoredBursts) }
        perReader("posminid_xruns_total", .counter, "Capture overruns the device recovered from.") { i, _ in Double(capture[i.id]?.overruns ?? 0) }
        perReader("posminid_dropped_samples_total", .counter, "Samples dropped because the decoder fell behind.") { i, _ in Double(capture[i.id]?.dropped ?? 0) }
        perReader("posminid_audio_gaps_total", .counter, "Breaks in the captured audio.") { i, _ in Double(capture[i.id]?.gaps ?? 0) }
        perReader("posminid_jack_flaps_total", .counter, "Jack changes less than a second apart: a loose or worn jack.") { _, m in Double(m.jackFlaps) }
        e.family("posminid_last_swipe_timestamp_seconds", .gauge, help: "When the reader's last swipe ended, seconds since the epoch.")
        for r in rows {
            if let t = r.m.lastSwipe { e.sample("posminid_last_swipe_timestamp_seconds", r.label, t.rounded()) }
        }
        let histograms: [(String, String, KeyPath<ReaderMetrics, Histogram>)] = [
            ("posminid_swipe_speed_meters_per_second", "Mean speed of each swipe.", \.speed),
            ("posminid_swipe_snr_decibels", "Median pulse over noise of each swipe.", \.snr),
            ("posminid_swipe_peak_dbfs", "Peak level of each swipe, dB relative to full scale.", \.peak),
            ("posminid_swipe_jitter_ratio", "RMS transition jitter of each swipe, as a fraction of a cell.", \.jitter),
            ("posminid_swipe_result_latency_seconds", "From a swipe's last sample to its result, in audio time.", \.latency),
        ]
        for (name, help, path) in histograms {
            e.family(name, .histogram, help: help)
            for r in rows { e.histogram(name, r.label, r.m[keyPath: path]) }
        }
        if let key = status.encryption, let transactionsLeft {
            e.family("posminid_dukpt_key_info", .gauge, help: "The key in use (value 1): its scheme, and whether it is a published test key.")
            e.sample("posminid_dukpt_key_info", ["scheme": key.scheme, "test_key": key.testKey ? "true" : "false"], 1)
            e.family("posminid_dukpt_transactions_remaining", .gauge, help: "Transactions left before the key is used up.")
            e.sample("posminid_dukpt_transactions_remaining", [:], Double(transactionsLeft))
        }
        return e.text
    }
}
