import Secrets
import Magstripe
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One way of reading a segment: how to condition it, how strict the transition threshold is,
/// how fast the clock follows, and which end to start from.
struct CandidateSetting: Sendable, Hashable {
    enum Front: Sendable, Hashable {
        /// The samples as they are.
        case direct
        /// Undoes an AC-coupling high-pass with this corner (Hz) that has turned each pulse into a
        /// doublet (slow swipes through a phone-like input): x + ωc·∫x, the integral leaking
        /// at a fifth of the corner so hum and drift stay bounded.
        case inverseHighPass(Double)
    }
    var front: Front
    /// Smoothing width as a fraction of the typical transition interval (0 = none).
    var smoothing: Double
    var threshold: Float
    var clockGain: Double
    var backward: Bool
}

/// Candidates that share a front end see the same transitions; only different front ends give
/// independent readings.
struct FrontKey: Hashable {
    var front: CandidateSetting.Front
    var smoothing: Double

    init(_ setting: CandidateSetting) {
        front = setting.front
        smoothing = setting.smoothing
    }
}

/// Decodes one segment of audio that the gate marked as activity: tries candidate settings in
/// order, keeps a read only when it passes the acceptance rules, and measures the swipe.
/// Reuses its buffers from swipe to swipe.
final class SwipeAnalyzer {
    let sampleRate: Double
    let channel: Int
    let maskPolicy: MaskPolicy
    /// Receives one line per candidate tried (no card data), for `--trace` and the benchmark.
    var trace: ((String) -> Void)?
    /// Sees every candidate's read, clear text included (in-process only: for the benchmark's
    /// false-accept analysis). With `exhaustive`, every candidate is tried even after a read.
    var observer: ((Int, TrackRead) -> Void)?
    var exhaustive = false
    var keepTimeline = false

    /// Primary first. Settings that share a front end are adjacent so its work is shared.
    static let candidates: [CandidateSetting] = {
        var list: [CandidateSetting] = []
        let fronts: [(CandidateSetting.Front, Double)] = [
            (.direct, 0.12), (.direct, 0), (.direct, 0.25), (.inverseHighPass(500), 0.12), (.inverseHighPass(200), 0.12),
            (.direct, 0.45), (.inverseHighPass(500), 0.35), (.inverseHighPass(200), 0.35),
        ]
        for (front, smoothing) in fronts {
            for (threshold, gain, backward) in [
                (Float(0.3), 0.25, false), (0.3, 0.25, true), (0.2, 0.25, false), (0.45, 0.25, false),
                (0.3, 0.1, false), (0.3, 0.45, false), (0.2, 0.1, true),
            ] {
                list.append(CandidateSetting(front: front, smoothing: smoothing, threshold: threshold,
                                             clockGain: gain, backward: backward))
            }
        }
        return list
    }()

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
    private var transitions: [FluxTransition] = []
    private var clockOutput = BitClock.Output()
    /// The level where the input clipped in this segment, 0 when it did not.
    private var clipLevel: Float = 0
    /// The segment's peak and how many samples reach 0.98 of full scale.
    private var segmentPeak: (peak: Float, count: Int) = (0, 0)
    /// The robust pulse height of the segment (hum included).
    private var segmentHeight: Float = 0
    /// What `prefixBuffer` holds: the running sum of the cleaned segment, once a direct front
    /// end has computed it, serves the next direct front end.
    private enum PrefixContent { case nothing, segment }
    private var prefixHolds = PrefixContent.nothing
    /// Lowest transition threshold for the current front end: from the noise before the swipe.
    private var noiseFloor: Float = 0

    init(sampleRate: Int, channel: Int, maskPolicy: MaskPolicy) {
        self.sampleRate = Double(sampleRate)
        self.channel = channel
        self.maskPolicy = maskPolicy
    }

    /// Set by `analyze` when the segment it returned nil for was a noise burst.
    private(set) var noiseBurst: NoiseBurst?

    /// What one candidate produced.
    struct Attempt {
        var setting: Int
        var bits: [UInt8]
        var confidence: [Float]
        var repairs: Int
        var bridged: Int
        var periods: [Float]
        var jitter: Double
        /// Stream positions (time order) of the first and last transition the clock used.
        var firstPosition: Double
        var lastPosition: Double
        var transitions: [FluxTransition]
        /// The clock walked from the last transition to the first: `bits` run against time.
        var backward: Bool
    }

    /// Analyses `segment` (samples of one channel). `startTime` is the stream time of its first
    /// sample, `noiseRMS` the noise level before the swipe. Returns nil when the segment holds
    /// no sign of a swipe (a click, a burst of noise).
    func analyze(_ segment: UnsafeBufferPointer<Float>, startTime: Double, noiseRMS: Double) -> Swipe? {
        noiseBurst = nil
        let n = segment.count
        guard n >= 64 else { return nil }
        ensureCapacity(n)
        defer { if work.count > keptSamples { resize(1) } }

        // One pass for the 0.5 ms blocks' sums and extremes: the peak, the clipping counts, the
        // hum fit's block means and the pulse height all come from them.
        let half = Self.humBlock(sampleRate)
        segmentTotal = Kernels.blockExtremes(segment, block: half, sums: blockMeanBuffer.baseAddress!,
                                             maxima: blockMaxima, minima: blockMinima)
        segmentPeak = peakAndCount(segment, block: half, level: 0.98)
        clipLevel = clippingLevel(segment)
        // Mains hum out first: it is coherent over the whole segment, the pulses are not.
        removeHum(segment, into: UnsafeMutableBufferPointer(rebasing: dehummed[0..<n]))
        let clean = UnsafeBufferPointer(rebasing: dehummed[0..<n])
        // A first look: the typical interval between transitions, from a plain pass.
        guard let typical = typicalInterval(clean) else { return nil }

        // A clean swipe already reads from the plain pass that measured the interval; what it
        // cannot settle on its own goes through the candidates. (Not in exhaustive mode, where
        // every candidate is to be seen.)
        if !exhaustive, let quick = plainRead(typical: typical) {
            return describe(segment: segment, startTime: startTime, noiseRMS: noiseRMS, attempt: quick.attempt,
                            accepted: (quick.read, quick.direction), failure: nil, tried: 1, typical: typical)
        }
        // The shortest read that may be accepted has 65 cells (start sentinel, ten characters,
        // end sentinel and LRC of five bits), each with at least one transition. A plain pass
        // that finds fewer saw the tail of a swipe, a click or a burst, not a card (noise and
        // doublets only add extrema to it): the candidates are not tried. Measured on the
        // benchmark grid (12 000 swipes, two seeds): not one read lost.
        // Whether it is reported at all (as a partial swipe, say) is the primary setting's call,
        // as when every candidate has failed.
        if !exhaustive && transitions.count < Self.fewestPlainTransitions {
            let primary = Self.candidates[0]
            let height = condition(clean, setting: primary, typical: typical)
            let attempt = candidateAttempt(primary, index: 0, segment: segment, typical: typical, height: height)
            guard attempt.bits.count >= 20 else { return nil }
            let (read, _) = judge(attempt, setting: primary, candidate: 0)
            return describe(segment: segment, startTime: startTime, noiseRMS: noiseRMS, attempt: attempt,
                            accepted: nil, failure: scrubbed(read), tried: 1, typical: typical)
        }

        var best: Attempt?
        var accepted: (read: TrackRead, attempt: Attempt, direction: SwipeDirection)?
        // Reads that need a second opinion, by text: the front end that produced each.
        var unconfirmed: [SecretText: Set<FrontKey>] = [:]
        var firstFailure: (TrackRead, Attempt)?
        var tried = 0
        var lastFront: (CandidateSetting.Front, Double)?
        var height: Float = 0

        candidateLoop: for (index, setting) in Self.candidates.enumerated() {
            tried += 1
            if lastFront == nil || lastFront! != (setting.front, setting.smoothing) {
                height = condition(clean, setting: setting, typical: typical)
                lastFront = (setting.front, setting.smoothing)
            }
            let attempt = candidateAttempt(setting, index: index, segment: segment, typical: typical, height: height)
            if index == 0 { best = attempt }
            guard attempt.bits.count >= 20 else {
                trace?("candidate \(index): transitions \(attempt.transitions.count) bits \(attempt.bits.count): no clock")
                continue
            }

            let (read, direction) = judge(attempt, setting: setting, candidate: index)
            trace?("candidate \(index) \(setting.front) s=\(setting.smoothing) th=\(setting.threshold) g=\(setting.clockGain) back=\(setting.backward): transitions \(attempt.transitions.count) bits \(attempt.bits.count) repairs \(clockOutput.repairs) → \(read.format.map { "\($0)" } ?? "-") \(read.status.code) weakest \(read.weakest ?? -1) corrections \(read.corrections)")
            observer?(index, read)
            if read.isOK {
                if accepted == nil { accepted = (read, attempt, direction) }
                if exhaustive { continue } else { break candidateLoop }
            }
            if case .failed(.unconfirmed) = read.status, let text = read.text {
                // A read that needs a second opinion is accepted once a different front end
                // (other filtering, so other transitions) gives the same text.
                let key = FrontKey(setting)
                if let earlier = unconfirmed[text], !earlier.subtracting([key]).isEmpty {
                    var confirmed = read
                    confirmed.status = .ok
                    if accepted == nil { accepted = (confirmed, attempt, direction) }
                    if exhaustive { continue } else { break candidateLoop }
                }
                unconfirmed[text, default: []].insert(key)
            }
            if firstFailure == nil { firstFailure = (scrubbed(read), attempt) }
        }

        let reference = accepted?.attempt ?? firstFailure?.1 ?? best
        guard let reference, reference.bits.count >= 20 || accepted != nil else { return nil }
        return describe(segment: segment, startTime: startTime, noiseRMS: noiseRMS, attempt: reference,
                        accepted: accepted.map { ($0.read, $0.direction) }, failure: firstFailure?.0,
                        tried: tried, typical: typical)
    }

    /// The lattice over the transitions of the interval pass (left in `transitions`), judged
    /// strictly: returned only for a read without correction (and, without payment structure,
    /// without a single doubtful bit).
    private func plainRead(typical: Double) -> (read: TrackRead, attempt: Attempt, direction: SwipeDirection)? {
        let primary = Self.candidates[0]
        let attempt = clock(primary, index: 0, backward: false, minimumHeight: 0.35 * segmentHeight)
        guard attempt.bits.count >= 20 else { return nil }
        let (read, direction) = judge(attempt, setting: primary, candidate: Self.plainPass)
        trace?("plain pass: transitions \(transitions.count) bits \(attempt.bits.count) → \(read.status.code)")
        guard read.isOK, read.corrections == 0 else { return nil }
        return (read, attempt, direction)
    }

    /// One candidate on the conditioned segment in `work` (see `condition`): its transitions,
    /// clipped pulses centred, then the bit clock.
    private func candidateAttempt(_ setting: CandidateSetting, index: Int, segment: UnsafeBufferPointer<Float>,
                                  typical: Double, height: Float) -> Attempt {
        let conditioned = UnsafeBufferPointer(rebasing: work[0..<segment.count])
        TransitionDetector(relativeThreshold: setting.threshold, typicalInterval: typical, floor: noiseFloor)
            .select(conditioned, candidates: extrema, initialHeight: height, into: &transitions)
        if clipLevel > 0 { centreClippedPulses(segment, reach: max(2, Int(0.25 * typical))) }
        return clock(setting, index: index, backward: setting.backward, minimumHeight: 0.35 * height)
    }

    /// The bit clock over `transitions`, packaged as an attempt of candidate `index`.
    private func clock(_ setting: CandidateSetting, index: Int, backward: Bool, minimumHeight: Float) -> Attempt {
        BitClock(gain: setting.clockGain, minimumHeight: minimumHeight).run(transitions, backward: backward, into: &clockOutput)
        let cells = max(1, clockOutput.bits.count)
        return Attempt(setting: index, bits: clockOutput.bits, confidence: clockOutput.confidence,
                       repairs: clockOutput.repairs, bridged: clockOutput.bridged, periods: clockOutput.periods,
                       jitter: (clockOutput.squaredError / Double(cells)).squareRoot(),
                       firstPosition: clockOutput.firstPosition, lastPosition: clockOutput.lastPosition,
                       transitions: transitions, backward: backward)
    }

    /// The median pulse height (for the SNR figure) is taken over at most this many
    /// transitions, evenly spread.
    static let medianSample = 256

    /// Fewer transitions than this in the plain pass: not worth the candidates (see `analyze`):
    /// the cells of the shortest acceptable read, 13 characters of 5 bits.
    static let fewestPlainTransitions = (SwipeDecoder.minimumDataCharacters + 3) * 5

    /// The candidate number the plain pass is judged as: not the primary, so nothing it reads
    /// needs the primary's say-so.
    static let plainPass = -1

    /// Clear text never leaves a failed read.
    private func scrubbed(_ read: TrackRead) -> TrackRead {
        var r = read
        r.text = nil
        r.content = nil
        r.masked = nil
        r.frame = nil
        return r
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

    private func ensureCapacity(_ n: Int) {
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

    // MARK: Conditioning

    /// The start of every segment that is known to precede the swipe: the pre-roll less the
    /// gate's energy window.
    static let noiseReference = 0.03

    /// The typical interval between transitions: median spacing of the extrema that a plain,
    /// unsmoothed pass selects. Nil when there are too few to be a swipe.
    /// `x` has its mean removed already.
    private func typicalInterval(_ x: UnsafeBufferPointer<Float>) -> Double? {
        let n = x.count
        let height = segmentHeight
        guard var estimate = medianInterval(x, height: height) else { return nil }
        // In noise the raw extrema crowd together; smoothing at the scale found so far thins
        // them toward the pulses, so repeat until the estimate settles. A clean signal needs no
        // second look.
        let quiet = min(n, Int(Self.noiseReference * sampleRate))
        var squares: Float = 0
        for i in 0..<quiet { squares += x[i] * x[i] }
        let noise = (squares / Float(max(1, quiet))).squareRoot()
        if noise * 10 < height { return estimate }
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

    /// Fills `work` with the conditioned segment and `extrema` with its candidate peaks.
    /// Returns the robust pulse height of the conditioned signal.
    private func condition(_ x: UnsafeBufferPointer<Float>, setting: CandidateSetting, typical: Double) -> Float {
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
        let quiet = min(n, Int(Self.noiseReference * sampleRate))
        var squares = 0.0
        for i in 0..<quiet { squares += Double(work[i]) * Double(work[i]) }
        noiseFloor = Float(3.5 * (squares / Double(max(1, quiet))).squareRoot())
        extremaCount = Kernels.localExtrema(conditioned, threshold: max(0.12 * height, 0.5 * noiseFloor), writingTo: extremaBuffer)
        return height
    }

    // MARK: Mains hum

    /// Harmonics of the mains frequency fitted and removed.
    static let humHarmonics = 6

    /// Fits 50 Hz and 60 Hz mains hum (fundamental and harmonics) to the whole segment by least
    /// squares, and removes whichever explains more of it, when it matters. A swipe's pulse
    /// train has little energy at exactly those frequencies over a whole segment, so the fit
    /// takes the hum and leaves the pulses. The fit runs on means of 0.5 ms blocks (hum is below
    /// 400 Hz), corrected for the averaging; only the subtraction touches every sample.
    private func removeHum(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>) {
        let n = x.count
        prefixHolds = .nothing          // a new segment
        let block = Self.humBlock(sampleRate)
        let blocks = n / block
        // The block sums are the segment pass's (see `analyze`).
        let means = UnsafeMutableBufferPointer(rebasing: blockMeanBuffer[0..<blocks])
        let mean = segmentTotal / Double(n)
        var meanSquare = 0.0
        for b in 0..<blocks {
            means[b] = means[b] / Double(block) - mean
            meanSquare += means[b] * means[b]
        }
        meanSquare /= Double(max(1, blocks))
        let m = Float(mean)
        for i in 0..<n { out[i] = x[i] - m }
        segmentHeight = heightFromBlocks(UnsafeBufferPointer(out), mean: m, halfBlock: block)
        // A fitted hum is at most √2 times the RMS of the block means: when that is already
        // too small to matter (as for most swipes, whose pulses cancel within a block), skip
        // the fit.
        guard (2 * meanSquare).squareRoot() > Self.humWorthRemoving * Double(segmentHeight) else { return }
        // Hum is stationary: whatever of it the segment holds, the noise before the swipe holds
        // too, without the swipe's own low frequencies. When the block means there stay well
        // below the level that matters, there is no hum to fit.
        let quietBlocks = Int(Self.noiseReference * sampleRate) / block
        if quietBlocks >= 8 && quietBlocks <= blocks {
            var quietSquare = 0.0
            for b in 0..<quietBlocks { quietSquare += means[b] * means[b] }
            quietSquare /= Double(quietBlocks)
            guard (2 * quietSquare).squareRoot() > 0.5 * Self.humWorthRemoving * Double(segmentHeight) else { return }
        }
        var bestEnergy = 0.0
        var bestFit: [(Double, Double, Double)] = []     // (radians per sample, cos, sin)
        for mains in [50.0, 60.0] {
            var fit: [(Double, Double, Double)] = []
            var energy = 0.0
            for h in 1...Self.humHarmonics {
                let w = 2 * Double.pi * mains * Double(h) / sampleRate
                guard w * Double(block) < Double.pi * 0.8 else { break }
                // Block b's mean stands for the sample at its centre, scaled by the averaging.
                let half = w * Double(block) / 2
                let gain = block > 1 ? sin(half) / (Double(block) * sin(w / 2)) : 1
                let centre = Double(block - 1) / 2
                var (a, bb) = Kernels.correlate(UnsafeBufferPointer(means), step: w * Double(block), phase: w * centre)
                a *= 2 / (Double(max(1, blocks)) * gain)
                bb *= 2 / (Double(max(1, blocks)) * gain)
                energy += a * a + bb * bb
                fit.append((w, a, bb))
            }
            if energy > bestEnergy {
                bestEnergy = energy
                bestFit = fit
            }
        }
        // Worth subtracting only when the hum stands out of the noise the fit itself picks up.
        let humAmplitude = bestEnergy.squareRoot()
        guard humAmplitude > Self.humWorthRemoving * Double(segmentHeight) else { return }
        for (w, a, b) in bestFit { Kernels.subtractSinusoid(out, w: w, a: a, b: b) }
    }

    /// Hum below this fraction of the pulse height is left alone.
    static let humWorthRemoving = 0.03

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

    // MARK: Acceptance

    /// A bit decided with less confidence than this is doubtful.
    static let weakBit: Float = 0.25
    /// Doubtful bits a read may hold besides the one correction flipped.
    static let allowedWeakBits = 1
    /// Correction may only flip a bit the clock was unsure of.
    static let correctableBit: Float = 0.45

    /// Reads the bits as each format in both directions and applies the acceptance rules.
    private func judge(_ attempt: Attempt, setting: CandidateSetting, candidate: Int) -> (TrackRead, SwipeDirection) {
        var failure: TrackRead?
        // 5-bit tracks are read with Track 3's capacity; `accept` names Track 2 when it fits.
        for bitFormat in [TrackFormat.track1, .track3] {
            let result = TrackDecoding.decodeEitherDirection(attempt.bits, format: bitFormat)
            switch result {
            case .failure(let error):
                let read = TrackRead(format: error == .noStartSentinel ? nil : bitFormat, status: .failed(.read(error)),
                                     text: nil, content: nil, corrections: 0, masked: nil, channel: channel)
                if failure == nil || failure?.format == nil { failure = read }
            case .success(let decoded):
                var direction = decoded.direction
                if setting.backward { direction = direction == .forward ? .reverse : .forward }
                let read = accept(decoded, attempt: attempt, setting: setting, candidate: candidate)
                if read.isOK || failure == nil || failure?.format == nil || isUnconfirmed(read) {
                    if read.isOK || isUnconfirmed(read) { return (read, direction) }
                    failure = read
                }
            }
        }
        return (failure!, .forward)
    }

    private func isUnconfirmed(_ read: TrackRead) -> Bool {
        if case .failed(.unconfirmed) = read.status { return true }
        return false
    }

    /// The acceptance rules: long enough, checks passed, and either card structure or the
    /// primary setting's say-so.
    private func accept(_ decoded: DecodedTrack, attempt: Attempt, setting: CandidateSetting, candidate: Int) -> TrackRead {
        let length = decoded.dataLength
        // How sure the clock was of the bits inside the frame, and of the bit correction flipped.
        let n = attempt.bits.count
        let toClock: (Int) -> Int = { decoded.direction == .forward ? $0 : n - 1 - $0 }
        var correctedBit = -1
        var correctedConfidence: Float?
        if let fix = decoded.corrections.first {
            correctedBit = toClock(decoded.startBit + fix.characterIndex * decoded.format.characterWidth + fix.bit)
            correctedConfidence = attempt.confidence[correctedBit]
        }
        var weakest: Float = 1
        var weakCount = 0
        var guesses = 0
        for j in decoded.startBit..<decoded.endBit {
            let bit = toClock(j)
            let c = attempt.confidence[bit]
            weakest = min(weakest, c)
            guard bit != correctedBit else { continue }
            if c < Self.weakBit { weakCount += 1 }
            if c <= 0 { guesses += 1 }
        }
        var format = decoded.format
        if format == .track3 && decoded.text.count + 1 <= TrackFormat.track2.maximumCharacters {
            format = .track2
        }
        var read = TrackRead(format: format, status: .ok, text: nil, content: nil,
                             corrections: decoded.corrections.count, masked: nil, channel: channel)
        read.weakest = weakest
        read.weakBits = weakCount
        read.correctedConfidence = correctedConfidence
        read.text = decoded.text
        // `startBit` counts in the decoder's reading order, which runs against time when exactly
        // one of the two (the reading, the clock) ran backwards.
        read.frame = TrackFrame(start: decoded.startBit, characters: decoded.text.count,
                                width: decoded.format.characterWidth, cellCount: n,
                                againstTime: (decoded.direction == .reverse) != attempt.backward)
        guard length >= SwipeDecoder.minimumDataCharacters else {
            read.status = .failed(.tooShort(length))
            return read
        }
        // A clock slip leaves its mark on the timing: reads that pass parity and LRC by chance
        // carry several doubtful bit decisions, or a correction of a bit the clock was sure of.
        // Correction may only flip a bit the clock was unsure of: a bit written wrong on the
        // card (or shifted by a slip in the recording) reads with clean timing, and flipping it
        // to satisfy parity and LRC would be guessing.
        // Correction is the primary setting's alone (each fallback setting is one more chance
        // for a damaged stripe to be "corrected" into other text), of a bit that was measured
        // but doubtful (not a bridged guess), with no other bit in doubt: a doubtful bit beside
        // a corrected one is two errors, which correction must never paper over.
        let allowedWeak = correctedConfidence == nil ? Self.allowedWeakBits : 0
        let correctable = correctedConfidence.map { $0 > 0 && $0 <= Self.correctableBit } ?? true
        if weakCount > allowedWeak || guesses > 0 || !correctable {
            read.status = .failed(.doubtful)
            return read
        }
        do {
            let content = try TrackContent.parse(decoded.text, format: format)
            read.content = content
            read.masked = content.masked(maskPolicy)
            // A track without payment structure stands on the primary setting's word, or on the
            // plain pass's when not a single bit of it was in doubt.
            let spotlessPlain = candidate == Self.plainPass && weakCount == 0 && correctedConfidence == nil
            if case .nonPayment = content, candidate != 0, !spotlessPlain {
                read.status = .failed(.unconfirmed)
            }
            if correctedConfidence != nil && candidate != 0 {
                // A fallback setting's correction is one more chance for a damaged stripe to be
                // "corrected" into other text: it needs another front end to agree.
                read.status = .failed(.unconfirmed)
            }
        } catch {
            read.status = .failed(.implausible(error))
        }
        return read
    }

    // MARK: The swipe's figures

    /// Nil (and `noiseBurst` set) when the segment held no card's clock (see `NoiseBurst`).
    private func describe(
        segment: UnsafeBufferPointer<Float>, startTime: Double, noiseRMS: Double, attempt: Attempt,
        accepted: (TrackRead, SwipeDirection)?, failure: TrackRead?, tried: Int, typical: Double
    ) -> Swipe? {
        let fs = sampleRate
        let (peak, clipped) = segmentPeak
        // Pulse heights in the raw signal at the transitions, against the noise before the swipe.
        // (At most `Self.medianSample` of them, spread over the swipe: an estimate for the report.)
        let step = max(1, attempt.transitions.count / Self.medianSample)
        var heights: [Float] = stride(from: 0, to: attempt.transitions.count, by: step).map { k in
            let i = min(segment.count - 1, max(0, Int(attempt.transitions[k].position + 0.5)))     // positions are ≥ 0
            return abs(segment[i])
        }
        let medianHeight = heights.isEmpty ? 0 : Double(selectKth(&heights, heights.count / 2))
        let snr = noiseRMS > 0 && medianHeight > 0 ? 20 * log10(medianHeight / noiseRMS) : 99

        let format = accepted?.0.format ?? failure?.format
        var speed: SpeedFigures?
        var minHalfCell = Double.infinity
        if !attempt.periods.isEmpty {
            var sum = 0.0, lo = Double.infinity, hi = 0.0
            for p in attempt.periods {
                let period = Double(p)
                sum += period; lo = min(lo, period); hi = max(hi, period)
            }
            let mean = sum / Double(attempt.periods.count)
            minHalfCell = lo / 2
            if let format {
                let cell = format.cellLengthMillimetres / 10       // cm
                speed = SpeedFigures(mean: cell / (mean / fs), min: cell / (hi / fs), max: cell / (lo / fs))
            }
        }
        let quality = SwipeQuality(
            peakDBFS: peak > 0 ? 20 * log10(Double(peak)) : -200, snrDB: snr, jitter: attempt.jitter,
            minimumSamplesPerHalfCell: minHalfCell.isFinite ? minHalfCell : 0,
            clippedFraction: Double(clipped) / Double(max(1, segment.count)),
            candidate: accepted == nil ? nil : attempt.setting, candidatesTried: tried)

        var tracks: [TrackRead] = []
        if let (read, _) = accepted { tracks.append(read) } else if let failure { tracks.append(failure) }
        let start = startTime + attempt.firstPosition / fs
        let end = startTime + attempt.lastPosition / fs
        var swipe = Swipe(start: start, end: max(start, end), direction: accepted?.1, tracks: tracks,
                          speed: speed, quality: quality, problem: nil)
        swipe.bits = attempt.bits
        if keepTimeline { swipe.timeline = timeline(attempt, startTime: startTime) }
        swipe.repairedCells = attempt.repairs
        swipe.bridgedCells = attempt.bridged
        if accepted == nil {
            if framedTooLittle(failure, bits: attempt.bits),
               let reason = NoiseBurst.classify(transitions: attempt.transitions, first: attempt.firstPosition,
                                                last: attempt.lastPosition, bits: attempt.bits,
                                                minimumSamplesPerHalfCell: quality.minimumSamplesPerHalfCell) {
                noiseBurst = NoiseBurst(reason: reason, start: start, duration: max(0, end - start),
                                        peakDBFS: quality.peakDBFS)
                return nil
            }
            swipe.problem = diagnose(swipe, failure: failure, attempt: attempt, typical: typical)
        }
        return swipe
    }

    /// Whether a failed read found too little of a track for the noise-burst line to pass it
    /// over: no start sentinel, or one followed by fewer than `SwipeLimits.framedCharacters`
    /// characters with good parity (a sentinel turns up by chance in noise's random bits).
    private func framedTooLittle(_ failure: TrackRead?, bits: [UInt8]) -> Bool {
        guard let format = failure?.format else { return true }
        return TrackDecoding.framedCharacters(bits, format: format) < SwipeLimits.framedCharacters
    }

    /// Where the clock put each cell, in stream seconds and time order: from the transition the
    /// clock began at, one tracked period per cell, each boundary drawn to a transition within a
    /// quarter of a cell of it (a boundary always has one in F2F).
    private func timeline(_ attempt: Attempt, startTime: Double) -> SwipeTimeline {
        let fs = sampleRate
        let positions = attempt.transitions.map(\.position).sorted()
        // The clock's positions are in time order either way; a backward clock began at the
        // last transition and its periods and bits run from there.
        let backward = attempt.backward
        var starts: [Double] = []
        starts.reserveCapacity(attempt.periods.count + 1)
        var boundary = backward ? attempt.lastPosition : attempt.firstPosition
        func snapped(_ x: Double, reach: Double) -> Double {
            // Nearest transition to x (positions sorted).
            var lo = 0, hi = positions.count
            while lo < hi { let mid = (lo + hi) / 2; if positions[mid] < x { lo = mid + 1 } else { hi = mid } }
            var best = x, distance = reach
            for k in [lo - 1, lo] where k >= 0 && k < positions.count && abs(positions[k] - x) < distance {
                best = positions[k]
                distance = abs(positions[k] - x)
            }
            return best
        }
        starts.append(boundary)
        for period in attempt.periods {
            let p = Double(period)
            boundary = snapped(backward ? boundary - p : boundary + p, reach: 0.25 * p)
            starts.append(boundary)
        }
        var times = starts.map { startTime + $0 / fs }
        var bits = attempt.bits
        if backward {
            times.reverse()
            bits.reverse()
        }
        return SwipeTimeline(transitions: positions.map { startTime + $0 / fs }, cellBoundaries: times, bits: bits)
    }

    /// The most likely reason a swipe did not read.
    private func diagnose(_ swipe: Swipe, failure: TrackRead?, attempt: Attempt, typical: Double) -> SwipeProblem {
        let q = swipe.quality
        if failure?.format == nil && attempt.bits.count < SwipeLimits.minimumBits { return .notAMagstripe }
        if q.clippedFraction > SwipeLimits.clippedFraction { return .clipped }
        if q.minimumSamplesPerHalfCell > 0 && q.minimumSamplesPerHalfCell < SwipeLimits.minimumSamplesPerHalfCell { return .tooFast }
        if q.peakDBFS < SwipeLimits.weakPeakDBFS { return .weakSignal }
        if q.snrDB < SwipeLimits.noisySNR { return .noisy }
        if let periods = Optional(attempt.periods), !periods.isEmpty {
            let lo = periods.min()!, hi = periods.max()!
            if Double(hi / lo) > SwipeLimits.unevenSpeedRatio || attempt.jitter > SwipeLimits.unevenJitter { return .unevenSpeed }
        }
        if case .failed(.read(let error)) = failure?.status {
            switch error {
            case .noEndSentinel, .missingLRC: return .partialSwipe
            default: break
            }
        }
        if let speed = swipe.speed, speed.mean < SwipeLimits.tooSlowSpeed { return .tooSlow }
        if failure?.format == nil { return .notAMagstripe }
        return .unevenSpeed
    }
}
