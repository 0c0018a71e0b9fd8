public import Magstripe
public import AudioFile
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
    public var blockDuration: Double = 0.002
    /// Energy window of the activity gate, seconds. Longer than the slowest cell (Track 2 at
    /// 5 cm/s: 6.8 ms) so a slow swipe keeps the gate open between its pulses.
    public var energyWindow: Double = 0.012
    /// Quiet time after the window empties before a swipe is closed, seconds.
    public var hangover: Double = 0.003
    /// Audio kept before the gate opens, seconds: the gate's window (the swipe may have begun
    /// that long before it opens) plus the noise the analysis measures its floor on.
    public var preRoll: Double = 0.05
    /// Longest swipe, seconds; a longer activity is cut here.
    public var maximumSwipe: Double = 4
    /// Window energy over the noise floor that opens the gate, and that keeps it open.
    public var openRatio: Double = 2
    public var closeRatio: Double = 1.2
    /// The slow measure's closing ratio (its noise fluctuates more).
    public var closeSlowRatio: Double = 4.2
    /// Time constant of the noise floor, an average of the activity measures while idle,
    /// seconds. (It stands still while a swipe is in progress.)
    public var floorTime: Double = 0.25
    /// Energy per sample below which nothing counts as activity (−80 dBFS).
    public var absoluteFloor: Double = 1e-8
    /// How much of a PAN masked fields show.
    public var maskPolicy: MaskPolicy = .standard
    /// Keep each swipe's flux transitions and cell boundaries (`Swipe.timeline`), for the
    /// diagnose plot. Off in the daemon: the timeline encodes the card.
    public var keepTimeline = false

    public init() {}
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
    /// `SwipeQuality.candidate` of a read the sequence detector made (one past the settings).
    public static var sequenceCandidate: Int { CandidateSetting.all.count }

    /// The sequence detector alone over `samples` (for the benchmark's worst-case timing): the
    /// cells it decided, 0 when it found no training stretch or more cells than a card holds.
    public static func sequenceCells(_ samples: [Float]) -> Int {
        samples.withUnsafeBufferPointer { SequenceDetector.detect($0)?.bits.count ?? 0 }
    }

    public let sampleRate: Int
    public let channel: Int
    public let configuration: DecoderConfiguration
    public let blockSize: Int

    /// Counters for status and diagnosis.
    public var samplesProcessed: Int64 { processed }
    /// Private storage: the per-block increment then needs no run-time exclusivity check (a
    /// public property's would).
    private var processed: Int64 = 0
    /// Where the audio has been continuous since (the last `discontinuity()`), in samples.
    private var continuousSince: Int64 = 0
    /// Gaps in the audio reported with `discontinuity()`.
    public private(set) var discontinuities = 0
    public private(set) var gateOpenings = 0
    public private(set) var swipesReported = 0
    /// Segments the gate closed and the analysis looked at (with or without a swipe in them).
    public private(set) var segmentsAnalyzed = 0
    /// Segments that held no card's clock (`NoiseBurst`, including those without any clock):
    /// dropped without a swipe.
    public private(set) var noiseBursts = 0
    private var recentNoiseBursts: [NoiseBurst] = []
    static let keptNoiseBursts = 16

    private let analyzer: SwipeAnalyzer
    private let windowBlocks: Int
    private let hangoverBlocks: Int
    private let preRollBlocks: Int
    private let maximumBlocks: Int

    // Buffers owned for the decoder's life, as raw buffers: the per-block path touches them
    // without array copy-on-write or exclusivity checks.
    /// Block assembly for partial chunks.
    private let pending: UnsafeMutableBufferPointer<Float>
    private var pendingCount = 0
    /// Pre-roll ring of whole blocks (while idle).
    private let ring: UnsafeMutableBufferPointer<Float>
    private var ringBlock = 0
    /// The open segment (while active).
    private let segment: UnsafeMutableBufferPointer<Float>
    private var segmentCount = 0
    private var segmentStart: Int64 = 0
    /// Samples of the stream's opening stretch kept before the segment, when the gate opened
    /// within that stretch (`OpeningStretch`): the segment proper starts at this index.
    private var segmentBase = 0
    /// The opening stretch before the segment was louder than what followed it.
    private var prefixFell = false
    /// The gate's state, in memory owned for the decoder's life: stepping it once per block
    /// through a pointer costs no run-time exclusivity bookkeeping (a stored `var` of a class
    /// would, on every mutating call).
    private let gateState: UnsafeMutablePointer<Gate>
    private var gate: Gate {
        get { gateState.pointee }
        set { gateState.pointee = newValue }
    }
    private var active = false
    /// The stream's first stretch, gathered into the segment while the gate learns its floor
    /// on it: if the stream began inside a swipe (a recording trimmed to it, a capture started
    /// mid-swipe), that floor is the swipe's own level and the gate would never open on it.
    private var opening = OpeningStretch.gathering
    /// The highest floor the gate learned on the opening stretch.
    private var openingFloor = 0.0
    private let openingLimitBlocks: Int
    private let settleBlocks: Int
    private let pickUpBlocks: Int
    /// The running DC level (for completing a last partial block).
    private var dc: Float { gate.dc }

    /// Throws for a rate outside `SampleRate.supported` (8-192 kHz): the block sizes, filters
    /// and buffers below are sized from it, and a rate from a file or a device must never trap.
    public init(sampleRate: Int, channel: Int = 0,
                configuration: DecoderConfiguration = DecoderConfiguration()) throws(UnsupportedSampleRate) {
        try SampleRate.check(sampleRate)
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
        openingLimitBlocks = min(maximumBlocks, Int((OpeningStretch.longest / blockSeconds).rounded(.up)))
        settleBlocks = Int((OpeningStretch.settle / blockSeconds).rounded(.up))
        pickUpBlocks = Int((OpeningStretch.pickUp / blockSeconds).rounded(.up))
        pending = .allocate(capacity: blockSize)
        pending.initialize(repeating: 0)
        ring = .allocate(capacity: preRollBlocks * blockSize)
        ring.initialize(repeating: 0)
        segment = Self.mapZeroed((maximumBlocks + preRollBlocks + openingLimitBlocks) * blockSize)
        gateState = .allocate(capacity: 1)
        gateState.initialize(to: Gate(configuration: configuration, blockSize: blockSize, windowBlocks: windowBlocks,
                    hangoverBlocks: hangoverBlocks, floorFollow: min(1, blockSeconds / configuration.floorTime),
                    dcFollow: Float(min(1, blockSeconds / 0.05)),
                    referenceStretch: max(4, min(32, Int((0.05 / blockSeconds).rounded())))))
        analyzer = SwipeAnalyzer(sampleRate: sampleRate, channel: channel, maskPolicy: configuration.maskPolicy)
        analyzer.keepTimeline = configuration.keepTimeline
    }

    deinit {
        gateState.deinitialize(count: 1)
        gateState.deallocate()
        pending.deallocate()
        ring.deallocate()
        munmap(segment.baseAddress, segmentBytes)
    }

    /// The segment buffer's length in bytes, and the system's page size (what mmap, madvise and
    /// mincore count in).
    private var segmentBytes: Int { segment.count * MemoryLayout<Float>.stride }
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    /// After a segment longer than `kept` samples, its pages past `kept` go back to the kernel
    /// (zero pages again when next written), as the analyser gives back its larger buffers: the
    /// decoder stays resident for a second of audio, not for the longest stretch it ever held.
    private func releaseSegmentPages(beyond kept: Int, used: Int) {
        let page = Self.pageSize, stride = MemoryLayout<Float>.stride
        let from = (kept * stride + page - 1) / page * page
        let to = min(segmentBytes, (used * stride + page - 1) / page * page)
        guard to > from, let base = segment.baseAddress else { return }
        _ = madvise(UnsafeMutableRawPointer(base) + from, to - from, Int32(MADV_DONTNEED))
    }

    /// Bytes of the segment buffer resident now (mincore; tests).
    var residentSegmentBytes: Int {
        let page = Self.pageSize, bytes = segmentBytes
        var map = [UInt8](repeating: 0, count: (bytes + page - 1) / page)
        guard let base = segment.baseAddress, mincore(UnsafeMutableRawPointer(base), bytes, &map) == 0 else { return -1 }
        return map.reduce(0) { $0 + Int($1 & 1) } * page
    }

    /// `count` zeros in pages of their own that the kernel supplies as they are first written:
    /// the segment holds the longest swipe (4 s, 1.5 MiB at 96 kHz), and a decoder should cost
    /// resident memory only for the audio it has held, not for room it may never use.
    private static func mapZeroed(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        let bytes = count * MemoryLayout<Float>.stride
        guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != UnsafeMutableRawPointer(bitPattern: -1) else {
            fatalError("cannot map \(bytes) bytes for the swipe segment: \(String(cString: strerror(errno)))")
        }
        return UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: count), count: count)
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
    public var noiseRMS: Double { gate.noiseRMS }
    /// Whether a swipe is in progress.
    public var isActive: Bool { active }
    /// Stream time (seconds) where the segment being gathered starts, pre-roll included; nil
    /// while the gate is closed.
    public var openSegmentStart: Double? { active ? Double(segmentStart) / Double(sampleRate) : nil }

    // MARK: Input

    /// Pushes 16-bit samples; returns the swipes that ended within them.
    public func push(_ samples: UnsafeBufferPointer<Int16>) -> [Swipe] {
        var results: [Swipe] = []
        var offset = 0
        let n = samples.count
        while offset < n {
            if pendingCount == 0 && n - offset >= blockSize {
                // A whole block straight from the input into its destination.
                Kernels.convert(UnsafeBufferPointer(rebasing: samples[offset ..< offset + blockSize]), into: blockDestination)
                offset += blockSize
                finishBlock(&results)
            } else {
                let take = min(blockSize - pendingCount, n - offset)
                Kernels.convert(UnsafeBufferPointer(rebasing: samples[offset ..< offset + take]),
                                into: UnsafeMutableBufferPointer(rebasing: pending[pendingCount ..< pendingCount + take]))
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
                _ = blockDestination.update(fromContentsOf: UnsafeBufferPointer(rebasing: samples[offset ..< offset + blockSize]))
                offset += blockSize
                finishBlock(&results)
            } else {
                _ = UnsafeMutableBufferPointer(rebasing: pending[pendingCount ..< pendingCount + take])
                    .update(fromContentsOf: UnsafeBufferPointer(rebasing: samples[offset ..< offset + take]))
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
        closeStretch(&results)
        if opening.isGathering { closeOpening(&results, noise: 0) }
        return results
    }

    /// The audio ends here (the stream, or its continuity): a partial block is completed with
    /// the baseline and a swipe in progress is closed and analysed.
    private func closeStretch(_ results: inout [Swipe]) {
        if pendingCount > 0 {
            for i in pendingCount..<blockSize { pending[i] = dc }
            pendingCount = blockSize
            flushPending(&results)
        }
        if active { closeSegment(&results) }
    }

    /// Analyses `samples` as one swipe, bypassing the gate (for recordings already cut to one
    /// swipe, and for stress tests that must reach the track decoder). The first 30 ms should
    /// be audio before the swipe: they set the noise floor.
    public func analyzeSegment(_ samples: [Float], startTime: Double = 0, noiseRMS: Double = 0) -> Swipe? {
        samples.withUnsafeBufferPointer { analyzer.analyze($0, startTime: startTime, noiseRMS: noiseRMS) }
    }

    /// Samples were lost between what was pushed and what comes next (the capture fell
    /// behind, or the device overran). Audio from both sides of a gap is never joined: a swipe
    /// in progress is closed and analysed on what came before (a swipe wholly before the gap
    /// still reads; a swipe cut by it does not), a partial block is completed with the
    /// baseline, and the pre-roll of the next swipe comes from after the gap only. Returns the
    /// swipes that ended.
    public func discontinuity() -> [Swipe] {
        var results: [Swipe] = []
        closeStretch(&results)
        if opening.isGathering { dropOpening() }
        gateState.pointee.restartWindows()
        continuousSince = processed
        discontinuities += 1
        return results
    }

    /// Forgets everything: the next sample starts a new stream.
    public func reset() {
        pendingCount = 0; ringBlock = 0; segmentCount = 0; segmentBase = 0; prefixFell = false
        active = false; processed = 0; continuousSince = 0
        opening = .gathering
        openingFloor = 0
        gateState.pointee.reset()
    }

    // MARK: The gate

    /// Where the next block goes: the segment while active (or while the stream's opening
    /// stretch is gathered), the pre-roll ring while idle.
    private var blockDestination: UnsafeMutableBufferPointer<Float> {
        active || opening.isGathering
            ? UnsafeMutableBufferPointer(rebasing: segment[segmentCount ..< segmentCount + blockSize])
            : UnsafeMutableBufferPointer(rebasing: ring[ringBlock * blockSize ..< (ringBlock + 1) * blockSize])
    }

    private func flushPending(_ results: inout [Swipe]) {
        _ = blockDestination.update(fromContentsOf: UnsafeBufferPointer(pending))
        pendingCount = 0
        finishBlock(&results)
    }

    /// Gate decision for the block just written to its destination.
    private func finishBlock(_ results: inout [Swipe]) {
        let stats = Kernels.blockMoments(UnsafeBufferPointer(blockDestination), centre: dc)
        if active || opening.isGathering {
            segmentCount += blockSize
        } else {
            ringBlock = (ringBlock + 1) % preRollBlocks
        }
        processed += Int64(blockSize)

        let segmentFull = (segmentCount - segmentBase) / blockSize >= maximumBlocks + preRollBlocks
        var fourth = 0.0
        if active && gateState.pointee.wantsFourthMoment {
            // The block's fourth central moment: only while a segment is open (the idle path
            // stays a few operations per sample).
            let block = UnsafeBufferPointer(rebasing: segment[(segmentCount - blockSize)..<segmentCount])
            let mean = dc + stats.sum / Float(blockSize)
            var sum: Float = 0
            for x in block { let d = (x - mean) * (x - mean); sum += d * d }
            fourth = Double(sum) / Double(blockSize)
        }
        let event = gateState.pointee.step(stats, active: active, segmentFull: segmentFull, fourth: fourth)
        if opening.isGathering && (event != .open || openingPicksUp) {
            followOpening(&results)
            return
        }
        switch event {
        case .none:
            break
        case .open:
            analyzer.trace?("gate opens at sample \(samplesProcessed): \(gate.levels)")
            openSegment(&results)
        case .close:
            analyzer.trace?("gate closes at sample \(samplesProcessed): \(gate.levels)")
            closeSegment(&results)
        }
    }

    private func openSegment(_ results: inout [Swipe]) {
        gateOpenings += 1
        if opening.isGathering {
            // The gate opened on something louder than the stream began with: the segment
            // starts as it would have, with the pre-roll's blocks, at the opening stretch's end.
            // The stretch stays before it: if the segment does not read alone, the stretch may
            // have been the swipe's start (a swipe that sped up, and so grew louder).
            // After a fall the stretch was louder than what followed: it is read on its own too.
            if case .fell = opening { prefixFell = true }
            opening = .done
            let kept = min(preRollBlocks * blockSize, segmentCount)
            segmentBase = segmentCount - kept
            segmentStart = samplesProcessed - Int64(kept)
            active = true
            return
        }
        // The pre-roll, oldest block first; the block that opened the gate is its newest.
        segmentCount = 0
        // Early in a stream the ring is not full yet: only blocks that were heard count.
        let heard = Int(min(Int64(preRollBlocks), (samplesProcessed - continuousSince) / Int64(blockSize)))
        for k in (preRollBlocks - heard)..<preRollBlocks {
            let block = (ringBlock + k) % preRollBlocks
            _ = UnsafeMutableBufferPointer(rebasing: segment[segmentCount ..< segmentCount + blockSize])
                .update(fromContentsOf: UnsafeBufferPointer(rebasing: ring[block * blockSize ..< (block + 1) * blockSize]))
            segmentCount += blockSize
        }
        segmentStart = samplesProcessed - Int64(segmentCount)
        active = true
    }

    /// `quietLead` false: the segment began inside a swipe, and `noise` is the level after it.
    private func closeSegment(_ results: inout [Swipe], quietLead: Bool = true, noise: Double = 0) {
        active = false
        segmentsAnalyzed += 1
        let startTime = Double(segmentStart) / Double(sampleRate)
        var swipe = analyzer.analyze(UnsafeBufferPointer(rebasing: segment[segmentBase..<segmentCount]),
                                     startTime: startTime, noiseRMS: quietLead ? noiseRMS : noise, quietLead: quietLead)
        var burst = analyzer.noiseBurst
        let streamStart = Double(continuousSince) / Double(sampleRate)
        if segmentBase > 0 && swipe?.readTracks.isEmpty != false {
            // Read with the opening stretch before it, as a segment that began inside a swipe.
            let whole = analyzer.analyze(UnsafeBufferPointer(rebasing: segment[0..<segmentCount]),
                                         startTime: streamStart, noiseRMS: 0, quietLead: false)
            if let whole, !whole.readTracks.isEmpty {
                swipe = whole
                burst = nil
            }
        } else if segmentBase > 0 && prefixFell,
                  var before = analyzer.analyze(UnsafeBufferPointer(rebasing: segment[0..<segmentBase]),
                                                startTime: streamStart, noiseRMS: 0, quietLead: false),
                  !before.readTracks.isEmpty {
            // The segment read, and so did the stretch before it: the swipe the stream began in.
            before.decidedAt = processed
            swipesReported += 1
            results.append(before)
        }
        prefixFell = false
        refillRing()
        let segmentLength = segmentCount - segmentBase
        segmentCount = 0
        segmentBase = 0
        if var swipe {
            swipe.decidedAt = processed
            swipesReported += 1
            results.append(swipe)
        } else if let burst = burst ?? (floorLearned ? NoiseBurst(
                reason: .noSwipe, start: startTime, duration: Double(segmentLength) / Double(sampleRate), peakDBFS: nil) : nil) {
            // Nothing a card made: what the analysis classified, or a segment without any clock
            // (not counted while the noise floor is still being learned at the start of the
            // audio, where the gate may open on the noise itself).
            noiseBursts += 1
            if recentNoiseBursts.count < Self.keptNoiseBursts { recentNoiseBursts.append(burst) }
        }
    }

    // MARK: The stream's opening stretch

    /// The first stretch of a stream, from its first sample. The gate learns its floor on the
    /// stretch's first window, as on any stream; the stretch is kept in the segment meanwhile
    /// (docs/DECODER.md, "The stream's opening stretch").
    /// - The gate opens on something louder: the segment starts with the usual pre-roll, the
    ///   stretch kept before it (`segmentBase`) for a second reading if the segment alone fails.
    /// - The level falls well below the floor learned on it: the stream began inside a swipe
    ///   (or a click, a burst). The stretch goes on until the level has held still for `settle`
    ///   and is then analysed as a segment without a noise lead; the floor starts afresh. A gate
    ///   opening sooner than `pickUp` after the level began to hold is the same swipe picking
    ///   up; a later one opens a segment, and the stretch is read on its own as well.
    /// - The stream ends first: the stretch is analysed the same way (a recording trimmed to
    ///   the swipe at both ends).
    /// - It lasts `longest` at a level that holds: noise, and the stretch becomes pre-roll.
    enum OpeningStretch: Equatable {
        case gathering
        /// The level fell: the lowest window level since, and for how many blocks it has held
        /// within `settleRange` of it.
        case fell(lowest: Double, held: Int)
        case done

        var isGathering: Bool { self != .done }
        /// Longer than the slowest whole swipe (85.6 mm at 5 cm/s: 1.7 s).
        static let longest = 2.0
        /// The fall: the window's level below the floor learned on the stretch by this factor.
        static let fall = Gate.fallRatio
        /// After a fall the stretch ends once the level has held within this factor of its
        /// lowest for `settle` seconds: a swipe that slows down is quieter (a head's voltage
        /// follows the speed), and still a swipe.
        static let settleRange = 2.0
        static let settle = 0.3
        /// After a fall, the gate opening before the level has held for this long is the same
        /// swipe speeding up again, not a new one.
        static let pickUp = 0.1
    }

    private var openingPicksUp: Bool {
        if case .fell(_, let held) = opening { held < pickUpBlocks } else { false }
    }

    private func followOpening(_ results: inout [Swipe]) {
        let g = gateState.pointee
        switch opening {
        case .gathering:
            if g.floorStarted { openingFloor = max(openingFloor, g.fast.floor) }
            // (Digital silence has no level to fall from.)
            if g.floorStarted && openingFloor > OpeningStretch.fall * configuration.absoluteFloor
                && g.fast.level * OpeningStretch.fall < openingFloor {
                opening = .fell(lowest: g.fast.level, held: 0)
            } else if segmentCount / blockSize >= openingLimitBlocks {
                dropOpening()
            }
        case .fell(let lowest, let held):
            let level = g.fast.level
            let low = min(lowest, level)
            let steady = level <= OpeningStretch.settleRange * low ? held + 1 : 0
            if steady >= settleBlocks || segmentCount / blockSize >= openingLimitBlocks {
                closeOpening(&results, noise: low.squareRoot())
                gateState.pointee.restartFloor()
            } else {
                opening = .fell(lowest: low, held: steady)
            }
        case .done:
            break
        }
    }

    /// The opening stretch analysed as a segment that began inside a swipe.
    /// `noise`: the level that followed the stretch (RMS), or 0 when none did.
    private func closeOpening(_ results: inout [Swipe], noise: Double) {
        opening = .done
        guard segmentCount > 0 else { return }
        segmentStart = continuousSince
        closeSegment(&results, quietLead: false, noise: noise)
    }

    /// The opening stretch was the stream's noise: its last blocks become the pre-roll.
    private func dropOpening() {
        opening = .done
        refillRing()
        segmentCount = 0
    }

    /// The ring restarts empty-handed: it is filled with the segment's tail so the pre-roll stays
    /// continuous, and the segment's pages past what the analyser keeps go back.
    private func refillRing() {
        let span = preRollBlocks * blockSize
        if segmentCount >= span {
            _ = UnsafeMutableBufferPointer(rebasing: ring[0..<span])
                .update(fromContentsOf: UnsafeBufferPointer(rebasing: segment[(segmentCount - span)..<segmentCount]))
        } else {
            for k in 0..<preRollBlocks {
                let from = segmentCount - (preRollBlocks - k) * blockSize
                for i in 0..<blockSize { ring[k * blockSize + i] = from + i >= 0 ? segment[from + i] : dc }
            }
        }
        ringBlock = 0
        releaseSegmentPages(beyond: analyzer.keptSamples, used: segmentCount)
    }

    /// Whether the gate has heard the audio for longer than its floor's time constant since the
    /// stream (or its continuity) began.
    private var floorLearned: Bool {
        Double(segmentStart - continuousSince) >= configuration.floorTime * Double(sampleRate)
    }

    /// The noise bursts since the last call (at most `keptNoiseBursts` of them; `noiseBursts`
    /// counts them all), for the log.
    public func takeNoiseBursts() -> [NoiseBurst] {
        defer { recentNoiseBursts.removeAll(keepingCapacity: true) }
        return recentNoiseBursts
    }
}
