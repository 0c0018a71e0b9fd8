import Magstripe
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What the analysis of one segment came to.
enum SegmentOutcome {
    case swipe(Swipe)
    /// The segment held no card's clock.
    case noise(NoiseBurst)
}

/// What the front end measured of a segment's raw samples, for the report.
struct SegmentLevels: Sendable, Hashable {
    /// The largest |sample|.
    var peak: Float
    /// Samples at 0.98 of full scale or more.
    var clippedSamples: Int
}

/// The swipe's figures, its timeline and the most likely reason it failed: pure functions of
/// what the stages before measured.
enum SwipeReport {
    /// The median pulse height (for the SNR figure) is taken over at most this many
    /// transitions, evenly spread.
    static let medianSample = 256

    /// The swipe the attempt describes, or the noise burst it was (see `NoiseBurst`).
    static func describe(
        segment: UnsafeBufferPointer<Float>, startTime: Double, noiseRMS: Double, attempt: Attempt,
        accepted: (TrackRead, SwipeDirection)?, failure: TrackRead?, tried: Int,
        levels: SegmentLevels, sampleRate fs: Double, keepTimeline: Bool, quietLead: Bool = true
    ) -> SegmentOutcome {
        let peak = levels.peak, clipped = levels.clippedSamples
        // Pulse heights in the raw signal at the transitions, against the noise before the swipe.
        // (At most `Self.medianSample` of them, spread over the swipe: an estimate for the report.)
        let step = max(1, attempt.transitions.count / medianSample)
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
            candidate: accepted == nil ? nil : attempt.setting, candidatesTried: tried,
            pulseDBFS: medianHeight > 0 ? 20 * log10(medianHeight) : nil)

        var tracks: [TrackRead] = []
        if let (read, _) = accepted { tracks.append(read) } else if let failure { tracks.append(failure) }
        let start = startTime + attempt.firstPosition / fs
        let end = startTime + attempt.lastPosition / fs
        var swipe = Swipe(start: start, end: max(start, end), direction: accepted?.1, tracks: tracks,
                          speed: speed, quality: quality, problem: nil)
        swipe.bits = attempt.bits
        if keepTimeline { swipe.timeline = timeline(attempt, startTime: startTime, sampleRate: fs) }
        swipe.repairedCells = attempt.repairs
        swipe.bridgedCells = attempt.bridged
        if accepted == nil {
            // A segment that began at the stream's first sample may be the stream's own noise
            // (or a level that fell): without a framed track it is not taken for a swipe.
            if !quietLead && framedTooLittle(failure, bits: attempt.bits) {
                return .noise(NoiseBurst(reason: .noSwipe, start: start, duration: max(0, end - start),
                                         peakDBFS: quality.peakDBFS))
            }
            if framedTooLittle(failure, bits: attempt.bits),
               let reason = NoiseBurst.classify(transitions: attempt.transitions, first: attempt.firstPosition,
                                                last: attempt.lastPosition, bits: attempt.bits,
                                                minimumSamplesPerHalfCell: quality.minimumSamplesPerHalfCell) {
                return .noise(NoiseBurst(reason: reason, start: start, duration: max(0, end - start),
                                         peakDBFS: quality.peakDBFS))
            }
            swipe.problem = diagnose(swipe, failure: failure, attempt: attempt)
        }
        return .swipe(swipe)
    }

    /// Whether a failed read found too little of a track for the noise-burst line to pass it
    /// over: no start sentinel, or one followed by fewer than `SwipeLimits.framedCharacters`
    /// characters with good parity (a sentinel turns up by chance in noise's random bits).
    static func framedTooLittle(_ failure: TrackRead?, bits: [UInt8]) -> Bool {
        guard let format = failure?.format else { return true }
        return TrackDecoding.framedCharacters(bits, format: format) < SwipeLimits.framedCharacters
    }

    /// Where the clock put each cell, in stream seconds and time order: from the transition the
    /// clock began at, one tracked period per cell, each boundary drawn to a transition within a
    /// quarter of a cell of it (a boundary always has one in F2F).
    static func timeline(_ attempt: Attempt, startTime: Double, sampleRate fs: Double) -> SwipeTimeline {
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
    static func diagnose(_ swipe: Swipe, failure: TrackRead?, attempt: Attempt) -> SwipeProblem {
        let q = swipe.quality
        // Pulses this faint say nothing of what made them: a stripe read too quietly for its
        // clock to lock looks like no stripe at all, and "turn the volume up" is the advice a
        // weak reader needs (the gate's noise-burst test has dropped plain noise already).
        if (q.pulseDBFS ?? q.peakDBFS) < SwipeLimits.weakPeakDBFS { return .weakSignal }
        if failure?.format == nil && attempt.bits.count < SwipeLimits.minimumBits { return .notAMagstripe }
        if q.snrDB < SwipeLimits.noisySNR { return .noisy }
        // A swipe too fast for the rate even in its slower quarter is tooFast whatever its
        // spread: past the rate's limit the clock's periods scatter by themselves.
        let sorted = attempt.periods.sorted()
        if !sorted.isEmpty, Double(sorted[sorted.count * 3 / 4]) / 2 < SwipeLimits.minimumSamplesPerHalfCell { return .tooFast }
        // A hand that speeds up and slows down several-fold is told so before it is told it was
        // too fast, or too loud, at its fastest: steadiness is the cure (a steady swipe too fast
        // for the rate has one speed, and is tooFast; one driven into clipping is clipped). The
        // spread is from the 5th to the 95th percentile of the cells: a few cells that noise cut
        // short or merged do not make a hand uneven.
        let speedRatio = sorted.isEmpty ? 1 : Double(sorted[sorted.count * 95 / 100] / sorted[sorted.count * 5 / 100])
        if speedRatio > SwipeLimits.unevenSpeedRatio { return .unevenSpeed }
        if q.clippedFraction > SwipeLimits.clippedFraction { return .clipped }
        if q.minimumSamplesPerHalfCell > 0 && q.minimumSamplesPerHalfCell < SwipeLimits.minimumSamplesPerHalfCell { return .tooFast }
        // Transitions scattered off the clock: a hand's speed changes when the speed did change,
        // else the noise (a steady swipe's transitions move only with it).
        if attempt.jitter > SwipeLimits.unevenJitter && !attempt.periods.isEmpty {
            return speedRatio > SwipeLimits.cutUnevenRatio ? .unevenSpeed : .noisy
        }
        // Before a partial swipe: a swipe that crawled (or stopped) also ends without its end
        // sentinel, and "swipe in one steady movement" is the advice it needs.
        if let speed = swipe.speed, speed.mean < SwipeLimits.tooSlowSpeed { return .tooSlow }
        if swipe.end - swipe.start > SwipeLimits.crawlingSeconds { return .tooSlow }
        if case .failed(.read(let error)) = failure?.status {
            switch error {
            // A track that lost its clock part way, in a swipe whose speed changed more than a
            // pull-back's does: the hand, not the card's travel.
            case .noEndSentinel, .missingLRC: return speedRatio > SwipeLimits.cutUnevenRatio ? .unevenSpeed : .partialSwipe
            default: break
            }
        }
        if failure?.format == nil {
            // No start sentinel, but a card's clocking zeros at one end and data after them: a
            // swipe pulled out before the head reached the sentinel (a reverse swipe meets the
            // end of the track first). A tone's bits are all zeros, and stay notAMagstripe.
            guard looksCut(attempt.bits) else { return .notAMagstripe }
            return speedRatio > SwipeLimits.cutUnevenRatio ? .unevenSpeed : .partialSwipe
        }
        return .unevenSpeed
    }

    /// Clocking zeros (`clockRun` or more) at one end of the bits, and ones among the rest as
    /// data has them.
    static func looksCut(_ bits: [UInt8]) -> Bool {
        let leading = bits.prefix { $0 == 0 }.count, trailing = bits.reversed().prefix { $0 == 0 }.count
        let run = max(leading, trailing)
        guard run >= clockRun, bits.count - run >= SwipeLimits.minimumBits else { return false }
        let ones = bits.reduce(0) { $0 + Int($1) }
        return Double(ones) >= 0.15 * Double(bits.count - run)
    }

    /// Zeros in a row that only a card's clocking run (or a tone) gives: ISO 7811 puts at least
    /// a few millimetres of them before the first character, dozens of cells.
    static let clockRun = 10
}
