#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A windowed mean of one activity measure and its noise floor: the floor follows the measure
/// down at once and up only slowly, and only while the gate is idle.
struct ActivityMeter {
    /// The window's values: inline storage (no array, so no uniqueness check per block).
    private var values = InlineArray<32, Double>(repeating: 0)
    private let count: Int
    private var index = 0
    private var sum = 0.0
    private let inverseCount: Double
    private(set) var floor = 0.0
    /// The windowed mean, kept current by `add`.
    private(set) var level = 0.0

    init(window: Int) {
        precondition(window >= 1 && window <= 32, "activity window of 1-32 blocks")
        count = window
        inverseCount = 1 / Double(window)
    }

    var ratio: Double { floor > 0 ? level / floor : 0 }

    /// Whether the level exceeds `factor` times the floor (no division on the per-block path).
    @inline(__always)
    func above(_ factor: Double) -> Bool { level > factor * floor }

    mutating func add(_ value: Double) {
        sum += value - values[index]
        values[index] = value
        index += 1
        if index == count { index = 0 }
        level = max(0, sum * inverseCount)
    }

    /// Forgets the window (the floor stays): after a gap in the audio.
    mutating func clearWindow() {
        for k in 0..<count { values[k] = 0 }
        index = 0; sum = 0; level = 0
    }

    mutating func startFloor(minimum: Double) {
        floor = max(level, minimum)
    }

    /// An average of the idle level, not a minimum: the slow measure has few degrees of
    /// freedom, and a minimum of it sits far below its mean, so noise alone would cross a
    /// threshold set on it.
    mutating func followFloor(_ follow: Double, minimum: Double) {
        floor += (level - floor) * follow
        floor = max(floor, minimum)
    }
}

/// The activity gate: per block, two measures of activity against their noise floors.
/// - the block's own variance: blind to DC offset and mains hum (nearly constant over a block),
///   alive to the dense narrow pulses of a fast swipe;
/// - the change of the block mean from the last block: white noise averages out of a mean, so
///   the wide pulses of a slow swipe stand far above it even at 12 dB.
/// One value type stepped once per block, so the per-block path is a single access.
struct Gate {
    enum Event { case none, open, close }

    let configuration: DecoderConfiguration
    let blockSize: Int
    let windowBlocks: Int
    let hangoverBlocks: Int
    let floorFollow: Double
    let dcFollow: Float
    /// The slow measure has fewer degrees of freedom, so it needs a wider margin over its floor.
    static let slowMargin = 3.0
    let openFast: Double, openSlow: Double, closeFast: Double, closeSlow: Double
    let inverseBlock: Double

    private(set) var fast: ActivityMeter
    private(set) var slow: ActivityMeter
    private(set) var dc: Float = 0
    private var lastMean = 0.0
    private var blocksSeen = 0
    private var quietBlocks = 0
    /// The last segment was cut at `maximumSwipe`, or closed on the noise it found inside itself:
    /// the level that held it open (noise that rose, or a gain that recovered) is the new floor.
    private var rebaseline = false

    // The floor inside an open segment. The floor stands still while the gate is open, so a
    // level that rises (digital silence turning into the reader's noise, a muted input switched
    // on, a gain step) would hold the gate open until `maximumSwipe`, and a swipe in it would be
    // decided seconds late. While open, the gate therefore also measures the noise the segment
    // opened on: 50 ms stretches (`referenceBlocks`) that are noise-like, their blocks all alike
    // (`flatness`) and their samples Gaussian (`gaussianKurtosis`), for as long as every stretch
    // since the opening has been so. A segment that opened on a swipe never gets a reference.
    // Once a stretch `referenceContrast` times louder has followed (a swipe), and the level has
    // stayed back at the reference for `ownNoiseHold` hangovers, the segment is closed as if
    // the floor had been there all along, and the floor starts afresh at that level. Measured
    // on the benchmark grid (10 000 swipes, seed 2026): not one read lost; every looser setting
    // tried (contrast 4 or 6, flatness 3, no kurtosis test, a reference allowed mid-segment)
    // split jerky slow swipes.
    /// Blocks of the segment's reference stretch (about 50 ms; at most 32).
    let referenceBlocks: Int
    /// A stretch is stationary when no block's variance exceeds this many times its mean (a
    /// slow swipe's blocks swing between pulse and gap; noise's stay within about 1.5×).
    static let flatness = 2.2
    /// How much louder than the segment's own noise a stretch must be to count as a swipe.
    static let referenceContrast = 10.0
    /// A level below the floor by this factor has fallen: the floor follows it `fallSpeedUp`
    /// times faster (a time constant of 25 ms instead of 250).
    static let fallRatio = 4.0
    static let fallSpeedUp = 10.0
    private var recentFast = InlineArray<32, Double>(repeating: 0)
    private var recentSlow = InlineArray<32, Double>(repeating: 0)
    private var recentFourth = InlineArray<32, Double>(repeating: 0)
    private var recentIndex = 0
    private var recentFastSum = 0.0, recentSlowSum = 0.0, recentFourthSum = 0.0
    /// The kurtosis a stretch of noise has (Gaussian: 3; over a 50 ms stretch at 44.1 kHz its
    /// estimate varies by about 0.1). Swipes measured 2.5 and below (dense, sine-like pulses
    /// through a high-pass) or above 3.5 (sparse, peaky pulses).
    static let gaussianKurtosis = 2.6...3.5
    private var activeBlocks = 0
    private var ownNoiseBlocks = 0
    private var onlyNoiseSoFar = true
    // Real noise is often neither Gaussian nor white (a head's pickup is low-pass, with hum and
    // mains spikes: measured kurtosis 5-12 and stretches up to 3.4 times their mean on the
    // MetroCard recordings), so it fails the test above. Such a stretch may still be taken as
    // the segment's noise when the level it opened on has held still for longer than any swipe
    // holds its level below a tenth of its loudest: `steadyBlocks` (about 0.2 s) in which every
    // stretch mean stays within `steadyRange` of the quietest and no block exceeds
    // `steadyFlatness` times its stretch's mean. A hand speeds up within a card's leading
    // clocking zeros (at 5 cm/s they last about 0.15 s); a level step does not move.
    /// Blocks the opening level must hold (about 0.2 s).
    let steadyBlocks: Int
    static let steadyRange = 2.0
    static let steadyFlatness = 4.5
    private var steadySoFar = true
    private var steadyHeld = 0
    private var steadyLowest = Double.infinity, steadyLoudest = 0.0, steadyLoudestSlow = 0.0
    /// How many hangovers the level must stay at the segment's own noise.
    static let ownNoiseHold = 3
    /// The segment's own noise (mean block variance, mean step²): its quietest Gaussian stretch,
    /// or the loudest stretch of a level that held still; and the loudest stretch mean since.
    private var referenceFast = Double.infinity, referenceSlow = Double.infinity
    private var louderAfterReference = 0.0

    init(configuration: DecoderConfiguration, blockSize: Int, windowBlocks: Int, hangoverBlocks: Int,
         floorFollow: Double, dcFollow: Float, referenceStretch: Int) {
        precondition(referenceStretch >= 1 && referenceStretch <= 32, "a reference stretch of 1-32 blocks")
        self.configuration = configuration
        self.blockSize = blockSize
        self.windowBlocks = windowBlocks
        self.hangoverBlocks = hangoverBlocks
        self.floorFollow = floorFollow
        self.dcFollow = dcFollow
        openFast = configuration.openRatio
        openSlow = configuration.openRatio * Gate.slowMargin
        closeFast = configuration.closeRatio
        closeSlow = configuration.closeSlowRatio
        inverseBlock = 1 / Double(blockSize)
        fast = ActivityMeter(window: windowBlocks)
        slow = ActivityMeter(window: windowBlocks)
        referenceBlocks = referenceStretch
        steadyBlocks = 4 * referenceStretch
    }

    /// The noise a swipe stands on: the segment's own noise when the gate measured it (a level
    /// that rose while the segment was open), else the floor before the segment opened.
    var noiseRMS: Double { (closedOnOwnNoise && referenceFast.isFinite ? referenceFast : fast.floor).squareRoot() }
    /// The last segment closed because the level was back at the noise it measured itself.
    private var closedOnOwnNoise = false
    var levels: String { "fast \(fast.ratio), slow \(slow.ratio)" }

    mutating func reset() {
        fast = ActivityMeter(window: windowBlocks)
        slow = ActivityMeter(window: windowBlocks)
        dc = 0; lastMean = 0; blocksSeen = 0; quietBlocks = 0; rebaseline = false
        startSegmentReference()
    }

    /// Whether the block's fourth moment is wanted: only while every stretch of the open segment
    /// has passed the Gaussian test, the one test that uses it.
    var wantsFourthMoment: Bool { onlyNoiseSoFar }

    /// A segment opens: its own noise is still to be measured.
    private mutating func startSegmentReference() {
        for k in 0..<32 { recentFast[k] = 0; recentSlow[k] = 0; recentFourth[k] = 0 }
        recentIndex = 0; recentFastSum = 0; recentSlowSum = 0; recentFourthSum = 0; activeBlocks = 0; ownNoiseBlocks = 0; onlyNoiseSoFar = true
        steadySoFar = true; steadyHeld = 0; steadyLowest = .infinity; steadyLoudest = 0; steadyLoudestSlow = 0
        referenceFast = .infinity; referenceSlow = .infinity; louderAfterReference = 0
    }

    /// One block of an open segment into the reference stretch; whether the level is back at
    /// the segment's own noise after a louder stretch.
    private mutating func segmentNoise(_ variance: Double, _ step: Double, _ fourth: Double) -> Bool {
        let n = referenceBlocks
        recentFastSum += variance - recentFast[recentIndex]
        recentSlowSum += step - recentSlow[recentIndex]
        recentFourthSum += fourth - recentFourth[recentIndex]
        recentFast[recentIndex] = variance
        recentSlow[recentIndex] = step
        recentFourth[recentIndex] = fourth
        recentIndex = recentIndex + 1 == n ? 0 : recentIndex + 1
        activeBlocks += 1
        // The first blocks' window still holds audio from before the gate opened.
        guard activeBlocks >= windowBlocks + n else { return false }
        let meanFast = max(0, recentFastSum) / Double(n), meanSlow = max(0, recentSlowSum) / Double(n)
        var loudest = 0.0
        if onlyNoiseSoFar || steadySoFar {
            for k in 0..<n { loudest = max(loudest, recentFast[k]) }
        }
        if onlyNoiseSoFar {
            // Noise is Gaussian (kurtosis 3); a pulse train is not: peaky when sparse, sine-like
            // when dense.
            let kurtosis = meanFast > 0 ? max(0, recentFourthSum) / Double(n) / (meanFast * meanFast) : 0
            let gaussian = kurtosis >= Gate.gaussianKurtosis.lowerBound && kurtosis <= Gate.gaussianKurtosis.upperBound
            if !(gaussian && meanFast > 0 && loudest <= Gate.flatness * meanFast) { onlyNoiseSoFar = false }
        }
        var steadyNow = false
        if steadySoFar {
            if meanFast > 0 && loudest <= Gate.steadyFlatness * meanFast {
                if meanFast < steadyLowest { steadyLowest = meanFast }
                steadyLoudest = max(steadyLoudest, meanFast)
                steadyLoudestSlow = max(steadyLoudestSlow, meanSlow)
                steadySoFar = steadyLoudest <= Gate.steadyRange * steadyLowest
            } else {
                steadySoFar = false
            }
            if steadySoFar { steadyHeld += 1 }
            steadyNow = steadySoFar && steadyHeld >= steadyBlocks
        }
        // The reference is the noise the segment opened on: only while every stretch since the
        // gate opened has been noise-like, or the level has held still long enough. A segment
        // that opened on a swipe never gets one (a flat stretch later is a slow part of that
        // swipe), and once anything else has come the reference stands still.
        if onlyNoiseSoFar && meanFast < referenceFast {
            referenceFast = meanFast
            referenceSlow = max(meanSlow, configuration.absoluteFloor / Double(blockSize))
            louderAfterReference = 0
        } else if steadyNow && (referenceFast.isInfinite || steadyLoudest > referenceFast) {
            referenceFast = steadyLoudest
            referenceSlow = max(steadyLoudestSlow, configuration.absoluteFloor / Double(blockSize))
            louderAfterReference = 0
        } else if referenceFast.isFinite {
            louderAfterReference = max(louderAfterReference, meanFast)
        }
        guard referenceFast.isFinite, louderAfterReference >= Gate.referenceContrast * referenceFast else { return false }
        return fast.level <= closeFast * referenceFast && slow.level <= closeSlow * referenceSlow
    }

    /// The floor starts afresh from the next block's window (after a stretch the gate did not
    /// open on was found to have been activity: the stream began inside a swipe).
    mutating func restartFloor() { rebaseline = true }

    /// Whether the floor has been learned on the stream's first window.
    var floorStarted: Bool { blocksSeen > windowBlocks + 1 }

    /// After a gap in the audio: the activity windows start empty; the noise floors and the
    /// DC level, which change slowly, stay.
    mutating func restartWindows() {
        fast.clearWindow()
        slow.clearWindow()
        lastMean = Double(dc)
        quietBlocks = 0
    }

    /// `fourth`: while active, the block's fourth central moment (for the segment's noise test).
    mutating func step(_ stats: Kernels.BlockMoments, active: Bool, segmentFull: Bool, fourth: Double = 0) -> Event {
        blocksSeen += 1
        let b = Double(blockSize)
        let mean = Double(stats.sum) * inverseBlock
        let deviation = Double(stats.sum) - b * Double(dc)
        let variance = max(0, (Double(stats.sumOfSquares) - deviation * deviation * inverseBlock) * inverseBlock)
        let step = mean - lastMean
        lastMean = mean
        fast.add(variance)
        slow.add(step * step)
        if !active {
            dc += dcFollow * (Float(mean) - dc)
            guard blocksSeen > windowBlocks else { return .none }
            if blocksSeen == windowBlocks + 1 || rebaseline {
                fast.startFloor(minimum: configuration.absoluteFloor)
                slow.startFloor(minimum: configuration.absoluteFloor / b)
                rebaseline = false
                return .none
            }
            // A level that fell well below the floor (a gain stepped down, a noisy device went
            // quiet) is followed ten times faster, so a swipe soon after the fall still stands
            // above the floor; the fast measure decides, its noise being steady enough.
            let follow = fast.level * Gate.fallRatio < fast.floor ? min(1, floorFollow * Gate.fallSpeedUp) : floorFollow
            fast.followFloor(follow, minimum: configuration.absoluteFloor)
            slow.followFloor(follow, minimum: configuration.absoluteFloor / b)
            if fast.above(openFast) || slow.above(openSlow) {
                quietBlocks = 0
                closedOnOwnNoise = false
                startSegmentReference()
                return .open
            }
            return .none
        }
        let quiet = !fast.above(closeFast) && !slow.above(closeSlow)
        quietBlocks = quiet ? quietBlocks + 1 : 0
        // Back at the segment's own noise: held for longer than the hangover, since a swipe's
        // slow stretch can dip that low for a moment, the noise after its end stays.
        ownNoiseBlocks = segmentNoise(variance, step * step, fourth) ? ownNoiseBlocks + 1 : 0
        let backToOwnNoise = ownNoiseBlocks >= Gate.ownNoiseHold * hangoverBlocks
        if quietBlocks >= hangoverBlocks || backToOwnNoise || segmentFull {
            rebaseline = segmentFull || quietBlocks < hangoverBlocks
            closedOnOwnNoise = backToOwnNoise && quietBlocks < hangoverBlocks
            quietBlocks = 0
            ownNoiseBlocks = 0
            return .close
        }
        return .none
    }
}
