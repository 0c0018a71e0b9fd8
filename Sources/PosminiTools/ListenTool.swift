public import ReaderIO
import ReaderPipeline
import SwipeDecoder
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `posminid listen`: one reader session in the foreground, each swipe printed as it ends. The
/// technician's first check of a reader (and the tests' way through real libasound).
public struct ListenTool: Sendable {
    public enum Input: Sendable {
        case device(String)
        case file(path: String, paced: Bool)
        case raw(path: String, rate: Int, channels: Int, format: CaptureFormat, paced: Bool)
    }

    public var input: Input
    public var json = false
    public var reveal = false
    public var rate = 44_100
    /// Stop after this long (seconds), or after this many swipes.
    public var seconds: Double?
    public var swipes: Int?
    public var realTimePriority: Int32?

    public init(input: Input) { self.input = input }

    /// Set by SIGINT/SIGTERM: stop the session and report.
    static let interrupted = Atomic<Bool>(false)

    /// Runs the session; returns the exit status: 0 when it ended as asked (time, count,
    /// interrupt, end of a file), 1 when the device went away or failed, 2 when it could not be
    /// opened.
    public func run(out: @escaping @Sendable (String) -> Void, err: @escaping @Sendable (String) -> Void) -> Int32 {
        if reveal {
            err("posminid listen: --reveal prints clear card data (PAN and track text). Use it only with test cards, never where the output is kept or shared.")
        }
        let source: any CaptureSource
        do {
            source = try openSource()
        } catch {
            err("posminid listen: \(error)")
            return 2
        }
        let formatter = DecodeTool(json: json, reveal: reveal)
        let count = Atomic<Int>(0)
        let label = source.name
        let session = ReaderSession(source: source, configuration: {
            var c = ReaderSession.Configuration()
            c.realTimePriority = realTimePriority
            return c
        }()) { event in
            switch event {
            case .started(let rate, let channels, let period):
                var line = "posminid listen: capturing from \(label): \(rate) Hz, \(channels) channel\(channels == 1 ? "" : "s"), period \(period) frames"
                if let alsa = source as? ALSACapture { line += ", \(alsa.format), buffer \(alsa.bufferFrames) frames" }
                err(line)
            case .notice(let text):
                err("posminid listen: \(text)")
            case .swipe(let swipe):
                let index = count.add(1, ordering: .relaxed).newValue
                out(formatter.json ? formatter.jsonLine(swipe, file: label) : formatter.text(swipe, file: label, index: index))
            case .ended, .noiseBurst:
                break
            }
        }
        let started = monotonicSeconds()
        session.start()
        while !session.isFinished {
            if ListenTool.interrupted.load(ordering: .relaxed) { break }
            if let seconds, monotonicSeconds() - started >= seconds { break }
            if let swipes, count.load(ordering: .relaxed) >= swipes { break }
            _ = EventFD().wait(timeoutMilliseconds: 20)
        }
        let endedOnItsOwn = session.isFinished
        session.stop()
        let stats = session.statistics
        var ending = "posminid listen: \(stats.framesCaptured) frames captured, \(stats.swipes) swipes, \(stats.overruns) overruns, \(stats.dropped) samples dropped"
        var status: Int32 = 0
        if endedOnItsOwn, let reason = session.endReason {
            ending += "; capture ended: \(reason)"
            if case .endOfSource = reason {} else { status = 1 }
        }
        err(ending)
        return status
    }

    private func openSource() throws -> any CaptureSource {
        switch input {
        case .device(let name):
            return try ALSACapture(device: name, rate: rate)
        case .file(let path, let paced):
            return try FileSource(wav: path, paced: paced)
        case .raw(let path, let rate, let channels, let format, let paced):
            return try FileSource(raw: path, rate: rate, channels: channels, format: format, paced: paced)
        }
    }
}

/// SIGINT and SIGTERM end a foreground session cleanly (the handler only sets a flag).
public enum InterruptSignals {
    public static func install() {
        signal(SIGINT) { _ in ListenTool.interrupted.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in ListenTool.interrupted.store(true, ordering: .relaxed) }
    }
}
