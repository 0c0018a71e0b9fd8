#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 24: a maximum-likelihood sequence detector for swipes too fast for the transition
/// picker (below about two samples per half-cell transitions crowd within a sample or two of
/// each other, and their extrema merge). Instead of picking transitions one by one, it asks which
/// bit sequence, laid on a cell grid and read through the head's pulse, best explains every
/// sample: a Viterbi search over cells.
///
/// - **The model.** Each cell has a flux reversal at its boundary and, for a one, another at its
///   middle; reversals alternate in sign. The samples are `A · Σ d_i · g(n − τ_i)`, `d_i = ±1`,
///   `g` a Gaussian pulse whose width is fitted on the swipe's own leading clocking zeros (a
///   known training sequence, whichever way the card went), `A` the pulse height.
/// - **The state.** The sign of the reversal at the cell's boundary and the last two bits:
///   8 states, 2 branches each. A branch decides the next bit and scores the samples of the
///   cell before it, the first whose every neighbouring reversal (within a cell either side) is
///   then known.
/// - **The clock.** Each survivor carries its own boundary position, cell period and pulse height,
///   updated after every cell by a Gauss-Newton step on its own residual (a per-survivor
///   timing loop): a hand's speed changes are followed without deciding any bit early.
/// - **The cost.** 16 branches per cell, each a few samples against at most seven reversals;
///   no resampling (the pulse is evaluated at the reversals' fractional positions).
///
/// What it returns is an attempt like a candidate's, judged by the same acceptance rules.
struct SequenceDetector {
    /// Cells of leading clocking zeros the training uses.
    static let trainingCells = 12
    /// The loop gains: boundary position and period, from each cell's timing error.
    static let phaseGain = 0.35, periodGain = 0.04, heightGain = 0.05

    struct Survivor {
        var metric: Double
        /// Boundary positions of the previous and the current cell, samples.
        var previous: Double, boundary: Double
        var period: Double
        var height: Double
        /// Sign of the reversal at `boundary`, and the last two bits (older first).
        var sign: Double
        var older: UInt8, newer: UInt8
    }

    /// Reads `x` (a segment with its mean and hum taken out). Nil when no training stretch is
    /// found.
    static func detect(_ x: UnsafeBufferPointer<Float>) -> Attempt? {
        let n = x.count
        guard n > 64 else { return nil }
        // The swipe's extent: where the signal stands over 0.3 of its robust height (the 99th
        // percentile of the magnitudes, from at most 16 384 of them).
        let stride = max(1, n / 16_384)
        var sample: [Float] = []
        sample.reserveCapacity(n / stride + 1)
        for i in Swift.stride(from: 0, to: n, by: stride) { sample.append(abs(x[i])) }
        sample.sort()
        let height = sample[min(sample.count - 1, sample.count * 99 / 100)]
        guard height > 0 else { return nil }
        guard let first = x.firstIndex(where: { abs($0) > 0.3 * height }),
              let last = x.lastIndex(where: { abs($0) > 0.3 * height }), last - first > 64 else { return nil }
        // The clocking zeros: a tone whose zero crossings come once a cell. Below about 1.5
        // samples per half-cell their third harmonic lies past the Nyquist frequency, so they do
        // not tell the pulse's width: each width the training allows is searched, and the one
        // whose best path explains the samples best is kept.
        var best: (Attempt, Double)?
        for training in train(x, from: first, until: last) {
            guard let (attempt, metric) = search(x, training: training, last: last) else { continue }
            if best == nil || metric < best!.1 { best = (attempt, metric) }
        }
        return best?.0
    }

    /// The Viterbi search with one training's clock and pulse: the attempt and its path metric.
    static func search(_ x: UnsafeBufferPointer<Float>, training: Training, last: Int) -> (Attempt, Double)? {
        var survivors = [Survivor?](repeating: nil, count: 8)
        let start = Survivor(metric: 0, previous: training.boundary - training.period, boundary: training.boundary,
                             period: training.period, height: training.height, sign: training.sign, older: 0, newer: 0)
        survivors[index(sign: start.sign, older: 0, newer: 0)] = start
        var back: [UInt8] = []           // per cell and new state: the predecessor state
        var margins: [Double] = []       // per cell and new state: the metric margin of the choice
        back.reserveCapacity(8 * (SwipeLimits.stripeCells + 1))
        margins.reserveCapacity(8 * (SwipeLimits.stripeCells + 1))
        let width = training.width
        var cells = 0
        let end = Double(last) + 2 * training.period
        while true {
            var next = [Survivor?](repeating: nil, count: 8)
            var from = [UInt8](repeating: 0, count: 8)
            var margin = [Double](repeating: 0, count: 8)
            var alive = false
            for s in 0..<8 {
                guard let state = survivors[s] else { continue }
                if state.boundary + state.period > end { continue }
                // Two branches reach each state (its predecessors differ in the older bit): the
                // second to arrive sets the margin, which stays infinite if none does.
                for bit in UInt8(0)...1 {
                    let scored = branch(state, bit: bit, x: x, width: width)
                    let target = index(sign: scored.sign, older: scored.older, newer: scored.newer)
                    if let existing = next[target] {
                        if scored.metric < existing.metric {
                            margin[target] = existing.metric - scored.metric
                            next[target] = scored
                            from[target] = UInt8(s)
                        } else {
                            margin[target] = scored.metric - existing.metric
                        }
                    } else {
                        next[target] = scored
                        from[target] = UInt8(s)
                        margin[target] = .infinity
                    }
                    alive = true
                }
            }
            guard alive else { break }
            survivors = next
            back.append(contentsOf: from)
            margins.append(contentsOf: margin)
            cells += 1
            // No card holds more cells: what goes on is not one swipe (and the search's cost
            // stays bounded whatever the segment holds).
            if cells > SwipeLimits.stripeCells { return nil }
        }
        guard cells >= 20 else { return nil }
        // Trace back from the best final state: each step decided `newer` of the state it led to.
        var best = -1
        for s in 0..<8 { if let v = survivors[s], best < 0 || v.metric < survivors[best]!.metric { best = s } }
        guard best >= 0, let final = survivors[best] else { return nil }
        var bits = [UInt8](repeating: 0, count: cells)
        var margin = [Double](repeating: 0, count: cells)
        var state = best
        for k in stride(from: cells - 1, through: 0, by: -1) {
            bits[k] = UInt8(state & 1)
            margin[k] = margins[8 * k + state]
            state = Int(back[8 * k + state])
        }
        // A bit's confidence: the margin by which its path beat the other into that state,
        // against a clean cell's margin (the energy of the two reversals a one adds).
        let clean = max(1e-12, 2 * final.height * final.height * Double(max(1, Int(training.period / 2))))
        let confidence = margin.map { Float(min(1, $0 / clean)) }
        let period = Float(final.period)
        return (Attempt(setting: CandidateSetting.all.count, bits: bits, confidence: confidence, repairs: 0, bridged: 0,
                       periods: [Float](repeating: period, count: cells), jitter: 0,
                       firstPosition: training.boundary, lastPosition: final.boundary, transitions: [], backward: false), final.metric)
    }

    @inline(__always)
    static func index(sign: Double, older: UInt8, newer: UInt8) -> Int {
        (sign > 0 ? 4 : 0) | Int(older) << 1 | Int(newer)
    }

    /// The pulse: a Gaussian of standard deviation `width` samples.
    @inline(__always)
    static func pulse(_ t: Double, _ width: Double) -> Double { exp(-0.5 * t * t / (width * width)) }

    /// One branch: from `state` (cells up to the current one decided), deciding the next cell's
    /// bit, scores the current cell's samples and steps the survivor's clock.
    static func branch(_ state: Survivor, bit: UInt8, x: UnsafeBufferPointer<Float>, width: Double) -> Survivor {
        let p0 = state.previous, p1 = state.boundary, t = state.period
        let p2 = p1 + t, p3 = p2 + t
        // The sign at the previous boundary, from the current one and the older bit.
        let s1 = state.sign
        let s0 = state.older == 1 ? s1 : -s1
        let s2 = state.newer == 1 ? s1 : -s1
        let s3 = bit == 1 ? s2 : -s2
        // Boundaries at even slots, middles (sign 0: no reversal, a zero) at odd ones.
        var positions: InlineArray<7, Double> = [p0, 0, p1, 0, p2, 0, p3]
        var signs: InlineArray<7, Double> = [s0, 0, s1, 0, s2, 0, s3]
        if state.older == 1 { positions[1] = (p0 + p1) / 2; signs[1] = -s0 }
        if state.newer == 1 { positions[3] = (p1 + p2) / 2; signs[3] = -s1 }
        if bit == 1 { positions[5] = (p2 + p3) / 2; signs[5] = -s2 }
        let a = state.height
        let lo = max(0, Int(p1.rounded(.up))), hi = min(x.count, Int(p2.rounded(.up)))
        var error = 0.0, timing = 0.0, slope = 0.0, along = 0.0, power = 0.0
        let inverseVariance = 1 / (width * width)
        if lo < hi {
            for i in lo..<hi {
                let fi = Double(i)
                var model = 0.0, derivative = 0.0
                for j in 0..<7 where signs[j] != 0 {
                    let u = fi - positions[j]
                    let g = pulse(u, width)
                    model += signs[j] * g
                    derivative += signs[j] * g * u * inverseVariance
                }
                let e = Double(x[i]) - a * model
                error += e * e
                // d(model)/d(shift of every reversal) = A · Σ s · g · u / w².
                timing += e * a * derivative
                slope += a * a * derivative * derivative
                along += e * model
                power += model * model
            }
        }
        var next = state
        next.metric += error
        let shift = slope > 0 ? max(-0.25 * t, min(0.25 * t, timing / slope)) : 0
        next.previous = p1
        next.boundary = p2 + phaseGain * shift
        next.period = max(0.5 * t, min(1.5 * t, t + periodGain * shift))
        if power > 0 { next.height = max(0.2 * a, min(5 * a, a + heightGain * along / power)) }
        next.sign = s2
        next.older = state.newer
        next.newer = bit
        return next
    }

    struct Training {
        var boundary: Double, period: Double, sign: Double, height: Double, width: Double
    }

    /// The clocking zeros at the start of the swipe: the cell period from their zero crossings,
    /// then the boundary phase, the pulse's width and height by least squares over them.
    static func train(_ x: UnsafeBufferPointer<Float>, from first: Int, until last: Int) -> [Training] {
        // Zero crossings after the swipe starts.
        var crossings: [Double] = []
        var i = first + 1
        while i <= last && crossings.count < trainingCells + 4 {
            let a = x[i - 1], b = x[i]
            if (a < 0) != (b < 0) && a != b { crossings.append(Double(i - 1) + Double(a / (a - b))) }
            i += 1
        }
        guard crossings.count >= trainingCells + 2 else { return [] }
        // Skip the first crossing or two (the swipe's onset), then the median interval.
        let used = Array(crossings[2...])
        var intervals = zip(used.dropFirst(), used).map { $0 - $1 }
        intervals.sort()
        let period = intervals[intervals.count / 2]
        guard period >= 1.5, intervals[intervals.count / 4] > 0.7 * period, intervals[intervals.count * 3 / 4] < 1.3 * period else {
            return []
        }
        // A reversal midway between two crossings; fit the phase, the width and the height.
        let cells = trainingCells
        let origin = used[0] + period / 2
        let startSample = max(0, Int(origin - period)), endSample = min(last, Int(origin + Double(cells) * period))
        guard endSample - startSample > 8 else { return [] }
        let signAtOrigin: Double = x[min(x.count - 1, Int(origin.rounded()))] >= 0 ? 1 : -1
        var trainings: [Training] = []
        for width in widths where width <= 0.3 * period {
            var best: (error: Double, phase: Double, width: Double, height: Double)?
            for phaseStep in -4...4 {
                let phase = origin + Double(phaseStep) * period / 16
                var xy = 0.0, yy = 0.0, xx = 0.0
                for i in startSample..<endSample {
                    var model = 0.0
                    let k0 = Int(((Double(i) - phase) / period).rounded(.down))
                    for k in (k0 - 2)...(k0 + 3) {
                        let sign = (k & 1) == 0 ? signAtOrigin : -signAtOrigin
                        model += sign * pulse(Double(i) - phase - Double(k) * period, width)
                    }
                    xy += Double(x[i]) * model
                    yy += model * model
                    xx += Double(x[i]) * Double(x[i])
                }
                guard yy > 0 else { continue }
                let height = xy / yy
                let error = xx - height * xy
                if height > 0, best == nil || error < best!.error { best = (error, phase, width, height) }
            }
            if let best {
                trainings.append(Training(boundary: best.phase, period: period, sign: signAtOrigin, height: best.height, width: best.width))
            }
        }
        return trainings
    }

    /// The pulse widths searched (standard deviation, samples): from the narrowest a converter's
    /// anti-alias filter passes to the widest a swipe the picker cannot resolve has.
    static let widths = [0.45, 0.6, 0.8, 1.05, 1.4]
}
