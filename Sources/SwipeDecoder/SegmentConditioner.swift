#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The front end of a segment's analysis: measures its raw samples (peak, clipping, pulse
/// height), takes out its mean and mains hum, finds the typical interval between transitions,
/// conditions it for each candidate's front end and picks the transitions a candidate clocks.
/// Owns the work buffers, reused from segment to segment.
final class SegmentConditioner {
    let sampleRate: Double

    // Work buffers, reused from swipe to swipe and grown when a longer segment comes; owned raw
    // buffers, so slices of them can be handed around without copies.
    private var work = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1)
    /// Prefix sums for the moving averages (capacity: the longest segment + 1).
    private var prefixBuffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 1)
    private var dehummed = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1)
    private var scratch = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1)
    /// The sums (then means) of the 0.5 ms blocks the hum fit works on, and their extremes.
    private var blockMeanBuffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: 1)
    private var blockMaxima = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    private var blockMinima = UnsafeMutablePointer<Float>.allocate(capacity: 1)
    /// The sum of the segment's samples.
    private var segmentTotal = 0.0
    /// Candidate extrema of the current front end (indices), room for a whole segment.
    private var extremaBuffer = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    private var extremaCount = 0
    private var extrema: UnsafeBufferPointer<Int32> { UnsafeBufferPointer(start: extremaBuffer, count: extremaCount) }
    private var peaks: [Float] = []
    private var intervals: [Double] = []
    /// The transitions of the last pass: the plain pass's after `typicalInterval`, a
    /// candidate's after `detect`.
    private(set) var transitions: [FluxTransition] = []
    /// The level where the input clipped in this segment, 0 when it did not.
    private var clipLevel: Float = 0
    /// The segment's peak and how many samples reach 0.98 of full scale.
    private var segmentPeak: (peak: Float, count: Int) = (0, 0)
    /// The robust pulse height of the segment (hum included).
    private(set) var segmentHeight: Float = 0
    /// What `prefixBuffer` holds: the running sum of the cleaned segment, once a direct front
    /// end has computed it, serves the next direct front end.
    private enum PrefixContent { case nothing, segment }
    private var prefixHolds = PrefixContent.nothing
    /// Lowest transition threshold for the current front end: from the noise before the swipe.
    private var noiseFloor: Float = 0

    init(sampleRate: Double) {
        self.sampleRate = sampleRate
    }

    /// The segment less its mean and hum (valid after `prepare`).
    private(set) var clean = UnsafeBufferPointer<Float>(start: nil, count: 0)

    /// Measures `segment` and cleans it: its peak, clipping and pulse height, then the segment
    /// less its mean and mains hum in `clean`.
    /// `quietLead`: whether the segment begins with audio from before the swipe (the gate's
    /// pre-roll); a segment that began at the first sample of a stream, inside a swipe, has none.
    func prepare(_ segment: UnsafeBufferPointer<Float>, quietLead: Bool = true) -> SegmentLevels {
        let n = segment.count
        noiseLead = quietLead ? Int(Self.noiseReference * sampleRate) : 0
        ensureCapacity(n)
        prefixHolds = .nothing          // a new segment
        // One pass for the 0.5 ms blocks' sums and extremes: the peak, the clipping counts, the
        // hum fit's block means and the pulse height all come from them.
        let half = Self.humBlock(sampleRate)
        segmentTotal = Kernels.blockExtremes(segment, block: half, sums: blockMeanBuffer.baseAddress!,
                                             maxima: blockMaxima, minima: blockMinima)
        segmentPeak = peakAndCount(segment, block: half, level: 0.98)
        clipLevel = clippingLevel(segment)
        let out = UnsafeMutableBufferPointer(rebasing: dehummed[0..<n])
        let mean = segmentTotal / Double(n)
        let m = Float(mean)
        for i in 0..<n { out[i] = segment[i] - m }
        segmentHeight = heightFromBlocks(UnsafeBufferPointer(out), mean: m, halfBlock: half)
        // Mains hum out first: it is coherent over the whole segment, the pulses are not.
        HumFilter.remove(from: out, blockSums: UnsafeMutableBufferPointer(rebasing: blockMeanBuffer[0..<(n / half)]),
                         block: half, mean: mean, height: segmentHeight,
                         quietBlocks: noiseLead / half, sampleRate: sampleRate)
        clean = UnsafeBufferPointer(out)
        return SegmentLevels(peak: segmentPeak.peak, clippedSamples: segmentPeak.count)
    }

    /// Picks a candidate's transitions from the conditioned segment in `work` (see
    /// `condition`) into `transitions`, clipped pulses centred on their flat tops.
    func detect(threshold: Float, typical: Double, height: Float, segment: UnsafeBufferPointer<Float>) {
        let conditioned = UnsafeBufferPointer(rebasing: work[0..<segment.count])
        TransitionDetector(relativeThreshold: threshold, typicalInterval: typical, floor: noiseFloor)
            .select(conditioned, candidates: extrema, initialHeight: height, into: &transitions)
        if clipLevel > 0 { centreClippedPulses(segment, reach: max(2, Int(0.25 * typical))) }
    }

    deinit {
        prefixBuffer.deallocate()
        work.deallocate()
        dehummed.deallocate()
        scratch.deallocate()
        blockMeanBuffer.deallocate()
        extremaBuffer.deallocate()
        blockMaxima.deallocate()
        blockMinima.deallocate()
    }

    /// Work buffers for segments up to this long stay between segments (a swipe at 10 cm/s and
    /// its margins, 1.8 MiB at 44.1 kHz); a longer segment (a slow swipe, a stretch of noise up
    /// to the 4 s limit) gets its own and gives them back, so that the decoder's resident memory
    /// does not keep the longest segment it ever saw.
    static let keptSeconds = 1.0
    /// `keptSeconds` at this sample rate (the decoder's segment buffer keeps as much).
    var keptSamples: Int { Int(Self.keptSeconds * Double(sampleRate)) }

    /// Samples the work buffers hold room for now (tests).
    var workCapacity: Int { work.count }

    /// Gives back the buffers of a segment longer than `keptSeconds`.
    func releaseLongSegment() {
        if work.count > keptSamples { resize(1) }
    }

    func ensureCapacity(_ n: Int) {
        guard work.count < n || prefixBuffer.count < n + 1 else { return }
        resize(n)
    }

    private func resize(_ n: Int) {
        for buffer in [work, dehummed, scratch] { buffer.deallocate() }
        prefixBuffer.deallocate()
        blockMeanBuffer.deallocate()
        prefixBuffer = .allocate(capacity: n + 1)
        blockMeanBuffer = .allocate(capacity: n)
        extremaBuffer.deallocate()
        extremaBuffer = .allocate(capacity: n)
        blockMaxima.deallocate()
        blockMaxima = .allocate(capacity: n)
        blockMinima.deallocate()
        blockMinima = .allocate(capacity: n)
        work = .allocate(capacity: n)
        dehummed = .allocate(capacity: n)
        scratch = .allocate(capacity: n)
        for buffer in [work, dehummed, scratch] { buffer.initialize(repeating: 0) }
    }

    /// The start of every segment that is known to precede the swipe: the pre-roll less the
    /// gate's energy window.
    static let noiseReference = 0.03
    /// Samples of the present segment that precede its swipe: `noiseReference`, or none.
    private(set) var noiseLead = 0

    /// The typical interval between transitions: median spacing of the extrema that a plain,
    /// unsmoothed pass selects. Nil when there are too few to be a swipe.
    /// Of the segment less its mean and hum; leaves the plain pass's transitions in `transitions`.
    func typicalInterval() -> Double? {
        let x = clean
        let n = x.count
        let height = segmentHeight
        guard var estimate = medianInterval(x, height: height) else { return nil }
        // In noise the raw extrema crowd together; smoothing at the scale found so far thins
        // them toward the pulses, so repeat until the estimate settles. A clean signal needs no
        // second look.
        let quiet = min(n, noiseLead)
        var squares: Float = 0
        for i in 0..<quiet { squares += x[i] * x[i] }
        let noise = (squares / Float(max(1, quiet))).squareRoot()
        // (Without a lead of noise the segment's noise is unknown: the plain estimate stands.)
        if quiet == 0 || noise * 10 < height { return estimate }
        for _ in 0..<3 {
            let half = Int((0.06 * estimate).rounded())
            guard half >= 1 else { return estimate }
            let wv = UnsafeMutableBufferPointer(rebasing: work[0..<n])
            let sv = UnsafeMutableBufferPointer(rebasing: scratch[0..<n])
            prefixHolds = .nothing
            Kernels.movingAverage(x, half: half, into: sv, prefix: prefixBuffer)
            Kernels.movingAverage(UnsafeBufferPointer(sv), half: half, into: wv, prefix: prefixBuffer)
            let smoothed = medianInterval(UnsafeBufferPointer(wv))
            guard let next = smoothed else { return estimate }
            if abs(next - estimate) < 0.1 * estimate { return next }
            estimate = next
        }
        return estimate
    }

    /// Median spacing of the transitions a plain pass finds in `y`.
    private func medianInterval(_ y: UnsafeBufferPointer<Float>, height known: Float? = nil) -> Double? {
        let height = known ?? robustHeight(y)
        guard height > 0 else { return nil }
        extremaCount = Kernels.localExtrema(y, threshold: 0.3 * height, writingTo: extremaBuffer)
        let detector = TransitionDetector(relativeThreshold: 0.5, typicalInterval: Double(y.count))
        detector.select(y, candidates: extrema, initialHeight: height, into: &transitions)
        guard transitions.count >= 16 else { return nil }
        // Written in place after one resize (appending checks capacity and uniqueness each time).
        intervals.removeAll(keepingCapacity: true)
        intervals.append(contentsOf: repeatElement(0, count: transitions.count - 1))
        transitions.withUnsafeBufferPointer { t in
            intervals.withUnsafeMutableBufferPointer { out in
                for k in 1..<t.count { out[k - 1] = t[k].position - t[k - 1].position }
            }
        }
        return max(1, selectKth(&intervals, intervals.count / 2))
    }

    /// A robust pulse height: the 95th percentile of the peaks of 1 ms blocks.
    private func robustHeight(_ y: UnsafeBufferPointer<Float>) -> Float {
        Kernels.blockPeaks(y, block: Self.heightBlock(sampleRate), into: &peaks)
        guard !peaks.isEmpty else { return 0 }
        return upperPercentile(&peaks)
    }

    /// The 95th percentile of block peaks: the robust pulse height (reorders `values`).
    private func upperPercentile(_ values: inout [Float]) -> Float {
        selectKth(&values, min(values.count - 1, Int(Double(values.count) * 0.95)))
    }

    static func heightBlock(_ sampleRate: Double) -> Int { max(8, Int(sampleRate / 1_000)) }
    static func humBlock(_ sampleRate: Double) -> Int { max(1, Int(sampleRate / 2_000)) }

    /// `robustHeight(y)` for `y` = the segment less `mean`, from the segment pass's 0.5 ms block
    /// extremes where two of them make a 1 ms block (most rates): the same values, bit for bit
    /// (subtracting `mean` keeps the order of the samples), without another pass.
    private func heightFromBlocks(_ y: UnsafeBufferPointer<Float>, mean m: Float, halfBlock: Int) -> Float {
        let block = Self.heightBlock(sampleRate)
        guard block == 2 * halfBlock else { return robustHeight(y) }
        let pairs = y.count / block
        peaks.removeAll(keepingCapacity: true)
        peaks.append(contentsOf: repeatElement(0, count: pairs))
        peaks.withUnsafeMutableBufferPointer { out in
            for k in 0..<pairs {
                let hi = max(blockMaxima[2 * k], blockMaxima[2 * k + 1]) - m
                let lo = min(blockMinima[2 * k], blockMinima[2 * k + 1]) - m
                out[k] = max(abs(hi), abs(lo))
            }
        }
        if pairs * block < y.count {
            var last: Float = 0
            for i in (pairs * block)..<y.count { last = max(last, abs(y[i])) }
            peaks.append(last)
        }
        guard !peaks.isEmpty else { return 0 }
        return upperPercentile(&peaks)
    }

    /// The segment's peak |x| and how many samples reach `level`, from the block extremes: only
    /// blocks that reach the level are looked at sample by sample.
    private func peakAndCount(_ x: UnsafeBufferPointer<Float>, block: Int, level: Float) -> (peak: Float, count: Int) {
        let blocks = x.count / block
        var count = 0
        // Eight blocks at a time; a block is looked at sample by sample only when it reaches
        // the level.
        var top8 = SIMD8<Float>.zero
        let levels = SIMD8<Float>(repeating: level)
        var b = 0
        while b + 8 <= blocks {
            let hi = UnsafeRawPointer(blockMaxima + b).loadUnaligned(as: SIMD8<Float>.self)
            let lo = UnsafeRawPointer(blockMinima + b).loadUnaligned(as: SIMD8<Float>.self)
            let top = hi.replacing(with: -lo, where: -lo .> hi)
            top8.replace(with: top, where: top .> top8)
            let reach = top .>= levels
            if any(reach) {
                for k in 0..<8 where reach[k] {
                    for i in ((b + k) * block)..<((b + k + 1) * block) where abs(x[i]) >= level { count += 1 }
                }
            }
            b += 8
        }
        let t4 = top8.lowHalf.replacing(with: top8.highHalf, where: top8.highHalf .> top8.lowHalf)
        var peak = max(max(t4[0], t4[1]), max(t4[2], t4[3]))
        while b < blocks {
            let top = max(blockMaxima[b], -blockMinima[b])
            peak = max(peak, top)
            if top >= level {
                for i in (b * block)..<((b + 1) * block) where abs(x[i]) >= level { count += 1 }
            }
            b += 1
        }
        for i in (blocks * block)..<x.count {
            peak = max(peak, abs(x[i]))
            if abs(x[i]) >= level { count += 1 }
        }
        return (peak, count)
    }

    /// Fills `work` with the segment conditioned by `setting` and `extrema` with its candidate
    /// peaks. Returns the robust pulse height of the conditioned signal.
    func condition(_ setting: CandidateSetting.FrontEnd, typical: Double) -> Float {
        let x = clean
        let n = x.count
        // `x` has had its mean removed with the hum.
        var source = x
        if case .inverseHighPass(let corner) = setting.front {
            let gain = Float(2 * Double.pi * corner / sampleRate)
            let leak = Float(exp(-2 * Double.pi * corner / 5 / sampleRate))
            var acc: Float = 0
            for i in 0..<n {
                let v = x[i]
                acc = leak * acc + v
                scratch[i] = v + gain * acc
            }
            source = UnsafeBufferPointer(rebasing: scratch[0..<n])
        }
        // Smoothing over a fraction of the transition interval, less the baseline over about
        // four intervals: one band-pass tied to the swipe's own speed.
        let smoothHalf = Int((setting.smoothing * typical / 2).rounded())
        let baselineHalf = max(smoothHalf, max(2, Int((2 * typical).rounded())))
        if setting.front == .direct && prefixHolds == .segment {
            Kernels.bandPass(prefixed: prefixBuffer, count: n, smoothHalf: smoothHalf, baselineHalf: baselineHalf,
                             into: UnsafeMutableBufferPointer(rebasing: work[0..<n]))
        } else {
            Kernels.bandPass(source, smoothHalf: smoothHalf, baselineHalf: baselineHalf,
                             into: UnsafeMutableBufferPointer(rebasing: work[0..<n]), prefix: prefixBuffer)
            prefixHolds = setting.front == .direct ? .segment : .nothing
        }
        let conditioned = UnsafeBufferPointer(rebasing: work[0..<n])
        let height = robustHeight(conditioned)
        // The pre-roll before the gate opened is noise: no threshold may fall to its level.
        let quiet = min(n, noiseLead)
        var squares = 0.0
        for i in 0..<quiet { squares += Double(work[i]) * Double(work[i]) }
        noiseFloor = Float(3.5 * (squares / Double(max(1, quiet))).squareRoot())
        extremaCount = Kernels.localExtrema(conditioned, threshold: max(0.12 * height, 0.5 * noiseFloor), writingTo: extremaBuffer)
        return height
    }

    // MARK: Clipping

    /// The level at which the segment clipped: its peak, if at least a few runs of three or
    /// more samples sit exactly there; otherwise 0.
    private func clippingLevel(_ x: UnsafeBufferPointer<Float>) -> Float {
        let peak = segmentPeak.peak
        // Inputs clip at the converter's full scale or a preamplifier's rail, both loud.
        guard peak > 0.25 else { return 0 }
        // Three flat runs need at least nine samples exactly at the peak.
        guard peakAndCount(x, block: Self.humBlock(sampleRate), level: peak).count >= 9 else { return 0 }
        var runs = 0
        var i = 1
        while i + 1 < x.count {
            if abs(x[i]) == peak && x[i - 1] == x[i] && x[i + 1] == x[i] { runs += 1; i += 3 } else { i += 1 }
        }
        return runs >= 3 ? peak : 0
    }

    /// A clipped pulse's peak is a flat run; filtering tilts it, so the extremum found in the
    /// conditioned signal can sit at either end. Its centre is where the transition is.
    private func centreClippedPulses(_ x: UnsafeBufferPointer<Float>, reach: Int) {
        let level = clipLevel * 0.999
        for k in transitions.indices {
            let centre = Int(transitions[k].position.rounded())
            let sign: Float = transitions[k].polarity > 0 ? 1 : -1
            var best = -1
            for i in max(0, centre - reach)...min(x.count - 1, centre + reach) where x[i] * sign >= level {
                if best < 0 || abs(i - centre) < abs(best - centre) { best = i }
            }
            guard best >= 0 else { continue }
            var lo = best, hi = best
            while lo > 0 && x[lo - 1] * sign >= level { lo -= 1 }
            while hi + 1 < x.count && x[hi + 1] * sign >= level { hi += 1 }
            if hi > lo { transitions[k].position = Double(lo + hi) / 2 }
        }
    }
}
