/// Finds flux transitions in a conditioned segment: local extrema (SIMD pre-selection over a
/// low threshold), then an alternating-polarity selection whose threshold follows the recent
/// pulse height of each polarity separately.
struct TransitionDetector {
    /// Fraction of the recent pulse height of that polarity a new pulse must reach.
    var relativeThreshold: Float
    /// Typical distance between transitions, samples (sets how fast a silent gap lowers the
    /// thresholds).
    var typicalInterval: Double
    /// No threshold falls below this: a few times the noise RMS of the conditioned signal.
    var floor: Float = 0
    /// Fraction of the typical peak-to-peak swing that makes an extremum a transition even when
    /// it stands low over the baseline.
    static let swingThreshold: Float = 0.5

    /// Sub-sample position of the extremum at `i` (parabola through three samples; the middle
    /// of a flat top for a clipped pulse).
    @inline(__always)
    static func refine(_ y: UnsafeBufferPointer<Float>, _ i: Int) -> Double {
        let c = y[i]
        var j = i
        while j + 1 < y.count && y[j + 1] == c { j += 1 }
        if j > i { return Double(i + j) / 2 }
        guard i > 0 && i + 1 < y.count else { return Double(i) }
        let p = y[i - 1], q = y[i + 1]
        let denominator = p - 2 * c + q
        guard denominator != 0 else { return Double(i) }
        let offset = 0.5 * (p - q) / denominator
        return Double(i) + Double(max(-0.5, min(0.5, offset)))
    }

    /// Selects transitions from the extrema indices `candidates` of `y`.
    func select(
        _ y: UnsafeBufferPointer<Float>, candidates: UnsafeBufferPointer<Int32>, initialHeight: Float,
        into out: inout [FluxTransition]
    ) {
        out.removeAll(keepingCapacity: true)
        // At most one transition per candidate: room for all, filled through a pointer.
        if out.capacity < candidates.count { out.reserveCapacity(candidates.count) }
        out.append(contentsOf: repeatElement(FluxTransition(position: 0, amplitude: 0, polarity: 0), count: candidates.count))
        let count = out.withUnsafeMutableBufferPointer { out in
            selectInto(out, y, candidates: candidates, initialHeight: initialHeight)
        }
        out.removeLast(out.count - count)
    }

    private func selectInto(
        _ out: UnsafeMutableBufferPointer<FluxTransition>, _ y: UnsafeBufferPointer<Float>,
        candidates: UnsafeBufferPointer<Int32>, initialHeight: Float
    ) -> Int {
        var count = 0
        var positive = initialHeight, negative = initialHeight
        var lastAccepted = -Double.infinity
        // The last transition kept (polarity 0: none yet), held in locals.
        var lastPolarity: Int8 = 0
        var lastAmplitude: Float = 0
        let decayStart = 1.5 * typicalInterval
        let levelFloor = floor, swingFloor = 0.5 * floor
        for candidate in candidates {
            let i = Int(candidate)
            let v = y[i]
            let polarity: Int8 = v > 0 ? 1 : -1
            let amplitude = abs(v)
            var reference = polarity > 0 ? positive : negative
            let gap = Double(i) - lastAccepted
            if gap > decayStart {
                // A long silence: let the threshold fall, so a sudden drop in level is followed.
                reference *= Float(pow07((gap - decayStart) / typicalInterval))
            }
            // Where pulses crowd together their tails cancel, and a real pulse can stand low
            // over the baseline while its swing from the last pulse (of the other sign) is
            // full: accept on either. A noise wiggle of the expected sign that passes on swing is
            // replaced by the real pulse when it comes (same sign: the larger wins).
            let swing = lastPolarity != 0 && lastPolarity != polarity ? amplitude + lastAmplitude : 0
            let byLevel = amplitude >= max(levelFloor, relativeThreshold * reference)
            let bySwing = swing >= Self.swingThreshold * (positive + negative) && amplitude >= swingFloor
            guard byLevel || bySwing else { continue }
            if lastPolarity == polarity {
                // Two pulses of one sign in a row: one is not a transition; keep the larger.
                if amplitude > lastAmplitude {
                    out[count - 1] = FluxTransition(position: Self.refine(y, i), amplitude: amplitude, polarity: polarity)
                    lastAmplitude = amplitude
                    lastAccepted = Double(i)
                }
                continue
            }
            out[count] = FluxTransition(position: Self.refine(y, i), amplitude: amplitude, polarity: polarity)
            count += 1
            lastPolarity = polarity
            lastAmplitude = amplitude
            lastAccepted = Double(i)
            let bounded = min(amplitude, 2 * reference)
            if polarity > 0 {
                positive += 0.3 * (bounded - positive)
            } else {
                negative += 0.3 * (bounded - negative)
            }
        }
        return count
    }
}

/// 0.7^x for the threshold decay, without Foundation.
@inline(__always)
func pow07(_ x: Double) -> Double {
    guard x > 0 else { return 1 }
    if x > 40 { return 0 }
    var result = 1.0
    var n = x
    while n >= 1 { result *= 0.7; n -= 1 }
    return result * (1 - 0.3 * n)     // linear between whole steps: close enough for a threshold
}
