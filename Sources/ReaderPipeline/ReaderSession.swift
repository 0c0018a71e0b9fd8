public import SwipeDecoder
public import ReaderIO
import AudioFile
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a reader session reports, in order, on its decoder thread.
public enum ReaderEvent: Sendable {
    /// Capture runs: the negotiated stream.
    case started(rate: Int, channels: Int, periodFrames: Int)
    /// Something the operator should know that does not stop the session (no real-time
    /// priority, say).
    case notice(String)
    /// A swipe ended: its tracks (one per channel that read, merged), figures and problem.
    case swipe(Swipe)
    /// The session is over: nil when `stop()` asked for it, else why the source ended.
    case ended(CaptureEnd?)
    /// A segment held no card's clock (a click, a level step, a burst: `NoiseBurst`) and gave
    /// no swipe.
    case noiseBurst(NoiseBurst)
}

/// Counters a session keeps; readable from any thread.
public struct ReaderStatistics: Sendable, Hashable {
    public var framesCaptured = 0
    /// Recovered device overruns.
    public var overruns = 0
    /// Samples the capture thread could not hand over because the decoder fell behind.
    public var dropped = 0
    /// Breaks in the audio (overruns and drops): a swipe is never decoded across one.
    public var gaps = 0
    public var swipes = 0
    /// Events the daemon's queue dropped because they came faster than it took them (live
    /// sources only; filled in by the daemon).
    public var eventsDropped = 0

    public init(framesCaptured: Int = 0, overruns: Int = 0, dropped: Int = 0, gaps: Int = 0, swipes: Int = 0) {
        self.framesCaptured = framesCaptured
        self.overruns = overruns
        self.dropped = dropped
        self.gaps = gaps
        self.swipes = swipes
    }
}

/// A source → lock-free ring → decoder pipeline on two threads of its own. The capture thread
/// only waits, reads a period, writes it to the ring and counts; the decoder thread decodes
/// each channel as its own head, merges the tracks of one swipe, and delivers events.
/// `stop()` (and the end of the source) ends with both threads joined and the source closed.
public final class ReaderSession: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Ring capacity in seconds of audio.
        public var ringSeconds = 2.0
        /// SCHED_FIFO priority for the capture thread, if wanted.
        public var realTimePriority: Int32?
        public var decoder = DecoderConfiguration()
        /// Called on the capture thread just before its loop starts and just after it ends
        /// (with the periods it read), never inside it: for the benchmark's allocation count.
        public var captureProbe: (@Sendable (_ loopEnded: Bool, _ periods: Int) -> Void)?
        /// The decoder takes audio from the ring only while this is open (the daemon's replay
        /// seam: a recording decoded flat out stands still while its reader is not armed).
        public var hold: ReplayHold?
        public init() {}
    }

    public let source: any CaptureSource
    public let configuration: Configuration
    private let deliver: @Sendable (ReaderEvent) -> Void
    private let ring: SPSCRing<Float>
    private let stopEvent = EventFD()
    private let dataReady = EventFD()
    private let captureDone = Atomic<Bool>(false)
    private let framesCaptured = Atomic<Int>(0)
    private let swipeCount = Atomic<Int>(0)
    private let captureEnd = Mutex<CaptureEnd?>(nil)
    private let threads = Mutex<[OSThread]>([])
    private let finished = Atomic<Bool>(false)
    /// When the decoder thread last went round its loop (monotonic nanoseconds).
    private let decoderBeat = Atomic<Int>(0)

    public init(source: any CaptureSource, configuration: Configuration = Configuration(),
                onEvent: @escaping @Sendable (ReaderEvent) -> Void) {
        self.source = source
        self.configuration = configuration
        deliver = onEvent
        // Sized from a supported rate only: an unsupported one ends the session in `start()`.
        let rate = min(max(source.sampleRate, 0), SampleRate.supported.upperBound)
        let frames = max(Int(configuration.ringSeconds * Double(rate)), 4 * source.periodFrames)
        ring = SPSCRing(minimumCapacity: frames * source.channels)
    }

    deinit { stop() }

    public var statistics: ReaderStatistics {
        ReaderStatistics(framesCaptured: framesCaptured.load(ordering: .relaxed), overruns: source.overruns,
                         dropped: ring.dropped, gaps: ring.gaps, swipes: swipeCount.load(ordering: .relaxed))
    }

    /// Why the source ended on its own (nil while running, or when `stop()` ended it).
    public var endReason: CaptureEnd? { captureEnd.withLock { $0 } }

    /// Whether the decoder thread went round its loop within the last `seconds` (a live source
    /// wakes it every period): what the systemd watchdog vouches for.
    public func decoderAlive(within seconds: Double) -> Bool {
        Double(decoderBeat.load(ordering: .relaxed)) / 1e9 > monotonicSeconds() - seconds
    }

    /// Whether the session has delivered `.ended`.
    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    /// Starts capture and decoding. A source that fails to start ends the session at once.
    public func start() {
        do throws(CaptureEnd) {
            // A rate the decoder does not take ends the session here, before any thread starts.
            do throws(UnsupportedSampleRate) {
                try SampleRate.check(source.sampleRate)
            } catch {
                throw .failed("\(source.name): \(error)")
            }
            try source.start()
        } catch {
            source.close()
            captureEnd.withLock { $0 = error }
            finished.store(true, ordering: .releasing)
            deliver(.ended(error))
            return
        }
        deliver(.started(rate: source.sampleRate, channels: source.channels, periodFrames: source.periodFrames))
        let decoderThread = OSThread(name: "posmini-decode") { [self] in decodeLoop() }
        let captureThread = OSThread(name: "posmini-capture") { [self] in captureLoop() }
        threads.withLock { $0 = [captureThread, decoderThread] }
    }

    /// Stops both threads, joins them and closes the source. Idempotent; not from `onEvent`.
    public func stop() {
        stopEvent.signal()
        waitUntilFinished()
    }

    /// Blocks until the session has ended (the source ran out, the device went away, or
    /// `stop()`), with both threads joined and the source closed.
    public func waitUntilFinished() {
        let running = threads.withLock { list -> [OSThread] in
            let copy = list
            list = []
            return copy
        }
        for thread in running { thread.join() }
        source.close()
    }

    // MARK: The capture thread

    private func captureLoop() {
        if let priority = configuration.realTimePriority, let error = OSThread.requestRealTime(priority: priority) {
            deliver(.notice("real-time priority \(priority) refused (\(String(cString: strerror(error)))): capturing at normal priority; "
                + "grant CAP_SYS_NICE or LimitRTPRIO= in the unit to have it"))
        }
        let channels = source.channels
        let period = source.periodFrames
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: period * channels)
        defer { buffer.deallocate() }
        var end: CaptureEnd?
        var periods = 0
        var overruns = source.overruns
        configuration.captureProbe?(false, 0)
        // From here to the end of the loop: no allocation, no lock, no logging.
        capture: while true {
            guard source.waitForData(stop: stopEvent) else { break }
            if !source.isRealTime {
                // A file waits for the decoder instead of losing samples.
                while ring.writable < period * channels {
                    if stopEvent.wait(timeoutMilliseconds: 1) { break capture }
                }
            }
            let frames: Int
            do throws(CaptureEnd) {
                frames = try source.read(into: buffer, frames: period)
            } catch {
                end = error
                break
            }
            guard frames > 0 else { continue }
            if source.overruns != overruns {
                // The device lost samples before these: the decoder must not join across.
                overruns = source.overruns
                ring.markGap()
            }
            ring.write(UnsafeBufferPointer(start: buffer, count: frames * channels), granule: channels)
            framesCaptured.add(frames, ordering: .relaxed)
            periods &+= 1
            dataReady.signal()
        }
        configuration.captureProbe?(true, periods)
        captureEnd.withLock { $0 = end }
        captureDone.store(true, ordering: .releasing)
        dataReady.signal()
    }

    // MARK: The decoder thread

    private func decodeLoop() {
        let channels = source.channels
        let decoders: [SwipeDecoder]
        do {
            decoders = try (0..<channels).map { c throws(UnsupportedSampleRate) in
                try SwipeDecoder(sampleRate: source.sampleRate, channel: c, configuration: configuration.decoder)
            }
        } catch {
            // `start()` checked the rate, so this is not reached; were it, the session ends, not the process.
            stopEvent.signal()
            finished.store(true, ordering: .releasing)
            deliver(.ended(.failed("\(source.name): \(error)")))
            return
        }
        var merger = ChannelMerger(channels: channels)
        let chunkFrames = source.periodFrames
        let chunk = UnsafeMutableBufferPointer<Float>.allocate(capacity: chunkFrames * channels)
        let lane = UnsafeMutableBufferPointer<Float>.allocate(capacity: chunkFrames)
        defer {
            chunk.deallocate()
            lane.deallocate()
        }
        var pollSet = [
            pollfd(fd: dataReady.descriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stopEvent.descriptor, events: Int16(POLLIN), revents: 0),
        ]
        decoderBeat.store(Int(monotonicSeconds() * 1e9), ordering: .relaxed)
        decoding: while true {
            let rc = try? SystemCall.retrying("poll") { poll(&pollSet, 2, 1_000) }
            decoderBeat.store(Int(monotonicSeconds() * 1e9), ordering: .relaxed)
            if rc == nil { break }
            if stopEvent.isSignalled { break }
            dataReady.drain()
            let done = captureDone.load(ordering: .acquiring)
            // Everything the ring holds, a period at a time, never across a gap: where samples
            // were lost each decoder closes what it was gathering and starts afresh.
            while true {
                if let hold = configuration.hold, !hold.isOpen {
                    guard hold.wait(stop: stopEvent) else { break decoding }
                }
                // Whole frames only: every write is (see `write(_:granule:)`), and so every gap.
                let (n, gapAfter) = ring.readContinuous(into: chunk)
                if n == 0 && !gapAfter { break }
                let frames = n / channels
                for c in 0..<channels {
                    for i in 0..<frames { lane[i] = chunk[i * channels + c] }
                    let results = decoders[c].push(UnsafeBufferPointer(rebasing: lane[0..<frames]))
                    for swipe in results { merger.add(swipe) }
                    if gapAfter { for swipe in decoders[c].discontinuity() { merger.add(swipe) } }
                    reportNoise(decoders[c])
                }
                release(merger.ready(decoders))
            }
            if done {
                for decoder in decoders {
                    for swipe in decoder.finish() { merger.add(swipe) }
                    reportNoise(decoder)
                }
                release(merger.ready(nil))
                finished.store(true, ordering: .releasing)
                deliver(.ended(captureEnd.withLock { $0 }))
                stopEvent.signal()          // the capture thread has ended already; harmless
                return
            }
        }
        finished.store(true, ordering: .releasing)
        deliver(.ended(nil))
    }

    private func reportNoise(_ decoder: SwipeDecoder) {
        for burst in decoder.takeNoiseBursts() {
            deliver(.noiseBurst(burst))
        }
    }

    private func release(_ swipes: [Swipe]) {
        for swipe in swipes {
            swipeCount.add(1, ordering: .relaxed)
            deliver(.swipe(swipe))
        }
    }
}

