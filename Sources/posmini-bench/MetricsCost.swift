import PosminiMetrics
import PosminiProtocol

/// Issue 25: what the metrics cost. Rendering the exposition for 4 readers (every family, every
/// histogram filled), timed over many renders; the counting itself is the hub's, in its own
/// turn, and adds nothing on the capture or decoder threads (whose allocations per audio period
/// the throughput section counts).
func metricsCostReport() {
    var status = StatusReport()
    var readers: [String: ReaderMetrics] = [:]
    var capture: [String: (overruns: Int, dropped: Int, gaps: Int)] = [:]
    for k in 0..<4 {
        var info = ReaderInfo(id: "usb-0000:00:14.0-\(k + 1)", name: "Reader \(k + 1)")
        info.capturing = true
        info.card = "Device\(k)"
        info.source = .udev
        status.readers.append(info)
        var m = ReaderMetrics()
        m.read = 9_000 + k
        m.failed = 1_000
        for (j, reason) in ["tooFast", "tooSlow", "unevenSpeed", "partialSwipe", "weakSignal", "noisy"].enumerated() { m.failedByReason[reason] = 100 + j }
        m.tracks = ["1": ["ok": 9_000, "parityError": 40], "2": ["ok": 9_001, "noEndSentinel": 12]]
        m.lastSwipe = 1_800_000_000
        for i in 0..<10_000 {
            let u = Double(i % 997) / 997
            m.speed.observe(0.05 + 2.5 * u)
            m.snr.observe(6 + 34 * u)
            m.peak.observe(-60 + 60 * u)
            m.jitter.observe(0.25 * u)
            m.latency.observe(0.01 + 0.5 * u)
        }
        readers[info.id] = m
        capture[info.id] = (3, 0, 3)
    }
    status.encryption = .init(scheme: "aes128-dukpt", keyID: "", exhausted: false, testKey: false, nextCounter: 12)
    var daemon = DaemonMetrics()
    daemon.protocolErrors = ["unknown_reader": 2, "invalid_request": 1]
    var times: [Double] = []
    var bytes = 0
    for _ in 0..<300 {
        let t0 = monotonicSeconds()
        let text = MetricsText.render(status: status, readers: readers, capture: capture, daemon: daemon, transactionsLeft: 2_400_000_000)
        times.append((monotonicSeconds() - t0) * 1_000)
        bytes = text.utf8.count
    }
    times.sort()
    let median = times[times.count / 2]
    print("## Metrics: rendering the exposition (issue 25)\n")
    print("| readers | bytes | median ms | 95th percentile ms | target |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    print("| 4 | \(bytes) | \(fmt(median, 3)) | \(fmt(times[times.count * 95 / 100], 3)) | < 1 ms |")
    print("\nCounted by the hub from each reader's events: nothing on the capture or decoder threads (see the")
    print("allocations per chunk in the throughput section).\n")
}
