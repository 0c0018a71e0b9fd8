public import Magstripe
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Time constants of the streaming front end. Every one is a time, never a sample count, so the
/// decoder behaves the same at any rate from 8 to 192 kHz.
public struct DecoderConfiguration: Sendable, Hashable {
    /// Gate block length, seconds (rounded to a multiple of 16 samples).
    public var blockDuration: Double = 0.001
    /// Energy window of the activity gate, seconds. Longer than the slowest cell (Track 2 at
    /// 5 cm/s: 6.8 ms) so a slow swipe keeps the gate open between its pulses.
    public var energyWindow: Double = 0.012
    /// Quiet time after the window empties before a swipe is closed, seconds.
    public var hangover: Double = 0.003
    /// Audio kept before the gate opens, seconds.
    public var preRoll: Double = 0.05
    /// Longest swipe, seconds; a longer activity is cut here.
    public var maximumSwipe: Double = 4
    /// Window energy over the noise floor that opens the gate, and that keeps it open.
    public var openRatio: Double = 2
    public var closeRatio: Double = 1.4
    /// How fast the noise floor may rise while idle, dB per second (it falls at once).
    public var floorRise: Double = 3
    /// Energy per sample below which nothing counts as activity (−80 dBFS).
    public var absoluteFloor: Double = 1e-8
    /// How much of a PAN masked fields show.
    public var maskPolicy: MaskPolicy = .standard

    public init() {}
}

/// A windowed mean of one activity measure and its noise floor: the floor follows the measure
/// down at once and up only slowly, and only while the gate is idle.
struct ActivityMeter {
    private var values: [Double]
    private var index = 0
    private var sum = 0.0
    private(set) var floor = 0.0

    init(window: Int) {
        values = [Double](repeating: 0, count: window)
    }

    var level: Double { max(0, sum / Double(values.count)) }
    var ratio: Double { floor > 0 ? level / floor : 0 }

    mutating func add(_ value: Double) {
        sum += value - values[index]
        values[index] = value
        index = (index + 1) % values.count
    }

    mutating func startFloor(minimum: Double) {
        floor = max(level, minimum)
    }

    mutating func followFloor(rise: Double, minimum: Double) {
        floor = max(minimum, min(floor * rise, level))
    }
}

/// The streaming swipe decoder for one channel: push samples in any chunking, get swipes.
///
/// Idle audio passes a SIMD block gate that costs a few operations per sample. When the gate
/// sees activity, the samples (with a pre-roll) are kept until it has been quiet for the energy
/// window plus the hangover (about 15 ms), and the segment is analysed then. Everything works
/// in whole blocks, so the chunking of the input cannot change the output. Not thread-safe: one
/// decoder belongs to one thread.
public final class SwipeDecoder {
    /// Fewest characters between the sentinels for a read to be accepted: fewer could be chance.
    public static let minimumDataCharacters = 10

    public let sampleRate: Int
    public let channel: Int
    public let configuration: DecoderConfiguration
    public let blockSize: Int

    /// Counters for status and diagnosis.
    public private(set) var samplesProcessed: Int64 = 0
    public private(set) var gateOpenings = 0
    public private(set) var swipesReported = 0

    private let analyzer: SwipeAnalyzer
    private let windowBlocks: Int
    private let hangoverBlocks: Int
    private let preRollBlocks: Int
    private let maximumBlocks: Int
    private let floorRisePerBlock: Double
    private let dcFollow: Float
    /// The slow measure fluctuates more from block to block (fewer degrees of freedom), so it
    /// needs a wider margin over its floor.
    private let slowMargin = 2.0

    // Block assembly for partial chunks.
    private var pending: [Float]
    private var pendingCount = 0
    // Pre-roll ring of whole blocks (idle), and the open segment (active).
    private var ring: [Float]
    private var ringBlock = 0
    private var segment: [Float]
    private var segmentCount = 0
    private var segmentStart: Int64 = 0
    // Gate state.
    private var fast: ActivityMeter
    private var slow: ActivityMeter
    private var lastMean = 0.0
    private var blocksSeen = 0
    private var dc: Float = 0
    private var active = false
    private var quietBlocks = 0

    public init(sampleRate: Int, channel: Int = 0, configuration: DecoderConfiguration = DecoderConfiguration()) {
        precondition((1_000...1_000_000).contains(sampleRate), "sample rate out of range")
        self.sampleRate = sampleRate
        self.channel = channel
        self.configuration = configuration
        let fs = Double(sampleRate)
        blockSize = max(16, Int((configuration.blockDuration * fs / 16).rounded()) * 16)
        let blockSeconds = Double(blockSize) / fs
        windowBlocks = max(1, Int((configuration.energyWindow / blockSeconds).rounded(.up)))
        hangoverBlocks = max(1, Int((configuration.hangover / blockSeconds).rounded(.up)))
        preRollBlocks = max(1, Int((configuration.preRoll / blockSeconds).rounded(.up)))
        maximumBlocks = max(preRollBlocks + 1, Int((configuration.maximumSwipe / blockSeconds).rounded(.up)))
        floorRisePerBlock = pow(10, configuration.floorRise * blockSeconds / 10)
        dcFollow = Float(min(1, blockSeconds / 0.05))
        pending = [Float](repeating: 0, count: blockSize)
        ring = [Float](repeating: 0, count: preRollBlocks * blockSize)
        segment = [Float](repeating: 0, count: (maximumBlocks + preRollBlocks) * blockSize)
        fast = ActivityMeter(window: windowBlocks)
        slow = ActivityMeter(window: windowBlocks)
        analyzer = SwipeAnalyzer(sampleRate: sampleRate, channel: channel, maskPolicy: configuration.maskPolicy)
    }

    /// Receives one diagnostic line per candidate setting tried (never card data).
    public var trace: ((String) -> Void)? {
        get { analyzer.trace }
        set { analyzer.trace = newValue }
    }

    /// Sees every candidate setting's read, clear text included, and with `exhaustive` every
    /// candidate is tried: for the benchmark's false-accept analysis only.
    public var candidateObserver: ((Int, TrackRead) -> Void)? {
        get { analyzer.observer }
        set { analyzer.observer = newValue }
    }
    public var exhaustive: Bool {
        get { analyzer.exhaustive }
        set { analyzer.exhaustive = newValue }
    }

    /// The gate's noise floor as an RMS level (full scale = 1).
    public var noiseRMS: Double { fast.floor.squareRoot() }
    /// Whether a swipe is in progress.
    public var isActive: Bool { active }

    // MARK: Input

    /// Pushes 16-bit samples; returns the swipes that ended within them.
    public func push(_ samples: UnsafeBufferPointer<Int16>) -> [Swipe] {
        var results: [Swipe] = []
        var offset = 0
        let n = samples.count
        while offset < n {
            if pendingCount == 0 && n - offset >= blockSize {
                // A whole block straight from the input into its destination.
                let source = UnsafeBufferPointer(rebasing: samples[offset ..< offset + blockSize])
                withBlockDestination { Kernels.convert(source, into: $0) }
                offset += blockSize
                finishBlock(&results)
            } else {
                let take = min(blockSize - pendingCount, n - offset)
                pending.withUnsafeMutableBufferPointer { p in
                    Kernels.convert(UnsafeBufferPointer(rebasing: samples[offset ..< offset + take]),
                                    into: UnsafeMutableBufferPointer(rebasing: p[pendingCount ..< pendingCount + take]))
                }
                pendingCount += take
                offset += take
                if pendingCount == blockSize { flushPending(&results) }
            }
        }
        return results
    }

    /// Pushes samples scaled to [-1, 1); returns the swipes that ended within them.
    public func push(_ samples: UnsafeBufferPointer<Float>) -> [Swipe] {
        var results: [Swipe] = []
        var offset = 0
        let n = samples.count
        while offset < n {
            let take = min(blockSize - pendingCount, n - offset)
            if pendingCount == 0 && take == blockSize {
                withBlockDestination { dst in
                    for i in 0..<blockSize { dst[i] = samples[offset + i] }
                }
                offset += blockSize
                finishBlock(&results)
            } else {
                for i in 0..<take { pending[pendingCount + i] = samples[offset + i] }
                pendingCount += take
                offset += take
                if pendingCount == blockSize { flushPending(&results) }
            }
        }
        return results
    }

    public func push(_ samples: [Int16]) -> [Swipe] { samples.withUnsafeBufferPointer { push($0) } }
    public func push(_ samples: [Float]) -> [Swipe] { samples.withUnsafeBufferPointer { push($0) } }

    /// Ends the stream: a partial last block is completed with the baseline and a swipe still in
    /// progress is closed and analysed.
    public func finish() -> [Swipe] {
        var results: [Swipe] = []
        if pendingCount > 0 {
            for i in pendingCount..<blockSize { pending[i] = dc }
            pendingCount = blockSize
            flushPending(&results)
        }
        if active { closeSegment(&results) }
        return results
    }

    /// Analyses `samples` as one swipe, bypassing the gate (for recordings already cut to one
    /// swipe, and for stress tests that must reach the track decoder). The first 30 ms should
    /// be audio before the swipe: they set the noise floor.
    public func analyzeSegment(_ samples: [Float], startTime: Double = 0, noiseRMS: Double = 0) -> Swipe? {
        samples.withUnsafeBufferPointer { analyzer.analyze($0, startTime: startTime, noiseRMS: noiseRMS) }
    }

    /// Forgets everything: the next sample starts a new stream.
    public func reset() {
        pendingCount = 0; ringBlock = 0; segmentCount = 0; lastMean = 0
        blocksSeen = 0; dc = 0; active = false; quietBlocks = 0; samplesProcessed = 0
        fast = ActivityMeter(window: windowBlocks)
        slow = ActivityMeter(window: windowBlocks)
    }

    // MARK: The gate

    /// Where the next block goes: the segment while active, the pre-roll ring while idle.
    private func withBlockDestination(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        if active {
            segment.withUnsafeMutableBufferPointer { s in
                body(UnsafeMutableBufferPointer(rebasing: s[segmentCount ..< segmentCount + blockSize]))
            }
        } else {
            let start = ringBlock * blockSize
            ring.withUnsafeMutableBufferPointer { r in
                body(UnsafeMutableBufferPointer(rebasing: r[start ..< start + blockSize]))
            }
        }
    }

    private func flushPending(_ results: inout [Swipe]) {
        pending.withUnsafeBufferPointer { p in
            withBlockDestination { dst in
                for i in 0..<blockSize { dst[i] = p[i] }
            }
        }
        pendingCount = 0
        finishBlock(&results)
    }

    /// Gate decision for the block just written to its destination.
    private func finishBlock(_ results: inout [Swipe]) {
        let stats: Kernels.BlockStatistics
        if active {
            stats = segment.withUnsafeBufferPointer {
                Kernels.blockStatistics(UnsafeBufferPointer(rebasing: $0[segmentCount ..< segmentCount + blockSize]), centre: dc)
            }
            segmentCount += blockSize
        } else {
            let start = ringBlock * blockSize
            stats = ring.withUnsafeBufferPointer {
                Kernels.blockStatistics(UnsafeBufferPointer(rebasing: $0[start ..< start + blockSize]), centre: dc)
            }
            ringBlock = (ringBlock + 1) % preRollBlocks
        }
        samplesProcessed += Int64(blockSize)
        blocksSeen += 1

        // Two measures of activity, each against its own noise floor:
        // - the block's own variance: blind to DC offset and mains hum (nearly constant over a
        //   millisecond), alive to the dense narrow pulses of a fast swipe;
        // - the change of the block mean from the last block: white noise averages out of a
        //   mean, so the wide pulses of a slow swipe stand far above it even at 12 dB.
        let b = Double(blockSize)
        let mean = Double(stats.sum) / b
        let deviation = Double(stats.sum) - b * Double(dc)
        let variance = max(0, (Double(stats.sumOfSquares) - deviation * deviation / b) / b)
        let step = mean - lastMean
        lastMean = mean
        fast.add(variance)
        slow.add(step * step)

        if !active {
            dc += dcFollow * (stats.sum / Float(blockSize) - dc)
            guard blocksSeen > windowBlocks else { return }
            if blocksSeen == windowBlocks + 1 {
                fast.startFloor(minimum: configuration.absoluteFloor)
                slow.startFloor(minimum: configuration.absoluteFloor / b)
                return
            }
            fast.followFloor(rise: floorRisePerBlock, minimum: configuration.absoluteFloor)
            slow.followFloor(rise: floorRisePerBlock, minimum: configuration.absoluteFloor / b)
            if fast.ratio > configuration.openRatio || slow.ratio > configuration.openRatio * slowMargin {
                analyzer.trace?("gate opens at sample \(samplesProcessed): fast \(fast.ratio), slow \(slow.ratio)")
                openSegment()
            }
        } else {
            let quiet = fast.ratio < configuration.closeRatio && slow.ratio < configuration.closeRatio * slowMargin
            quietBlocks = quiet ? quietBlocks + 1 : 0
            if quietBlocks >= hangoverBlocks || segmentCount / blockSize >= maximumBlocks + preRollBlocks {
                analyzer.trace?("gate closes at sample \(samplesProcessed): fast \(fast.ratio), slow \(slow.ratio)")
                closeSegment(&results)
            }
        }
    }

    private func openSegment() {
        gateOpenings += 1
        // The pre-roll, oldest block first; the block that opened the gate is its newest.
        segmentCount = 0
        for k in 0..<preRollBlocks {
            let block = (ringBlock + k) % preRollBlocks
            for i in 0..<blockSize { segment[segmentCount + i] = ring[block * blockSize + i] }
            segmentCount += blockSize
        }
        segmentStart = samplesProcessed - Int64(segmentCount)
        active = true
        quietBlocks = 0
    }

    private func closeSegment(_ results: inout [Swipe]) {
        active = false
        quietBlocks = 0
        let startTime = Double(segmentStart) / Double(sampleRate)
        let swipe = segment.withUnsafeBufferPointer {
            analyzer.analyze(UnsafeBufferPointer(rebasing: $0[0..<segmentCount]), startTime: startTime, noiseRMS: noiseRMS)
        }
        // The ring restarts empty-handed: fill it with the segment's tail so pre-roll stays continuous.
        for k in 0..<preRollBlocks {
            let from = segmentCount - (preRollBlocks - k) * blockSize
            for i in 0..<blockSize { ring[k * blockSize + i] = from + i >= 0 ? segment[from + i] : dc }
        }
        ringBlock = 0
        segmentCount = 0
        if let swipe {
            swipesReported += 1
            results.append(swipe)
        }
    }
}
