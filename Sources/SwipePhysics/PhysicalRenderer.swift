import Magstripe
#if canImport(Glibc)
import Glibc
#endif

/// Renders a `PhysicalSwipe` to samples (one channel, -1...1).
public enum PhysicalRenderer {
    /// The card: ISO/IEC 7810 ID-1 is 85.60 mm long, and ISO/IEC 7811 puts the first data bit
    /// (the start sentinel's) 7.44 mm from the leading edge; the encoder writes clocking zeros
    /// from about 1 mm inside each edge.
    static let cardLength = 85.60
    static let firstDataBit = 7.44
    static let encodedFrom = 1.0
    /// The renderer works at this many times the sample rate, then decimates.
    static let oversampling = 4

    public static func render(_ swipe: PhysicalSwipe) -> [Float] {
        var random = PCG(seed: swipe.seed)
        let reversals = fluxReversals(swipe, random: &random)
        let motion = Motion(knots: swipe.speedKnots.map { $0 * 10 }, length: cardLength)     // mm/s
        let fineRate = Double(swipe.sampleRate * oversampling)

        // The span of time the head sees the encoded region, and the recording around it.
        let first = reversals.first?.position ?? 0, last = reversals.last?.position ?? cardLength
        let startTime = motion.time(at: first), endTime = motion.time(at: last)
        let quietBefore = swipe.trimmed ? -0.0002 : 0.08 + 0.1 * random.uniform()
        let quietAfter = swipe.trimmed ? -0.0002 : 0.08 + 0.1 * random.uniform()
        let t0 = startTime - quietBefore, t1 = endTime + quietAfter
        let fineCount = max(16, Int((t1 - t0) * fineRate))

        // The head's voltage at the fine rate: each reversal's pulse at the card's position then.
        var voltage = [Double](repeating: 0, count: fineCount)
        var positions = [Double](repeating: 0, count: fineCount)
        var speeds = [Double](repeating: 0, count: fineCount)
        motion.trace(from: t0, step: 1 / fineRate, into: &positions, speeds: &speeds)
        let wander = Wander(amount: swipe.widthWander, random: &random)
        var lower = 0
        for i in 0..<fineCount {
            let x = positions[i], v = speeds[i]
            // Half the width at half height, mm: `shape` takes distances in these units.
            let width = swipe.pulseWidth / 2000 * wander.factor(at: x / cardLength)
            let reach = 12 * width
            while lower < reversals.count && reversals[lower].position < x - reach { lower += 1 }
            var sum = 0.0
            var k = lower
            while k < reversals.count && reversals[k].position <= x + reach {
                let u = (x - reversals[k].position) / width
                sum += reversals[k].sign * reversals[k].strength * shape(swipe.pulse, u) / width
                k += 1
            }
            voltage[i] = v * sum
        }
        // Scale: the median pulse peak (the largest |voltage| within a quarter cell of each
        // reversal) becomes 1 before the channel.
        let median = medianPeak(voltage, positions: positions, reversals: reversals,
                                reach: swipe.format.cellLengthMillimetres / 4)
        if median > 0 { for i in voltage.indices { voltage[i] /= median } }
        // A reverse swipe meets the far edge first: the same voltage, played backwards in time
        // and with every pulse of the opposite sign (the card moves the other way).
        if swipe.direction == .reverse {
            voltage.reverse()
            for i in voltage.indices { voltage[i] = -voltage[i] }
        }
        return SoundCard.capture(voltage, swipe: swipe, fineRate: fineRate, random: &random)
    }

    /// One flux reversal: where it is on the card (mm from the leading edge), its sign and its
    /// strength (uneven magnetisation).
    struct Reversal {
        var position: Double
        var sign: Double
        var strength: Double
    }

    static func fluxReversals(_ swipe: PhysicalSwipe, random: inout PCG) -> [Reversal] {
        let format = swipe.format
        let cell = format.cellLengthMillimetres / (1 + swipe.densityError)
        let leading = max(1, Int((firstDataBit - encodedFrom) / cell))
        let data = swipe.writtenBits ?? (try? TrackEncoding.bits(for: swipe.text, format: format, leadingZeros: 0, trailingZeros: 0)) ?? []
        let trailing = max(1, Int((cardLength - encodedFrom) / cell) - leading - data.count - Int(encodedFrom / cell))
        let bits = [UInt8](repeating: 0, count: leading) + data + [UInt8](repeating: 0, count: trailing)
        var out: [Reversal] = []
        out.reserveCapacity(2 * bits.count + 1)
        var sign = 1.0
        func add(_ x: Double) {
            let shifted = x + swipe.jitter * cell * random.gaussian()
            out.append(Reversal(position: shifted, sign: sign, strength: 1 + 0.05 * random.gaussian()))
            sign = -sign
        }
        var x = encodedFrom
        for bit in bits {
            add(x)
            if bit != 0 { add(x + cell / 2) }
            x += cell
        }
        add(x)
        out.sort { $0.position < $1.position }
        return out
    }

    /// The pulse of a reversal at distance `u` widths from it (peak 1 at `u` = 0).
    static func shape(_ pulse: PhysicalSwipe.Pulse, _ u: Double) -> Double {
        switch pulse {
        case .gaussian:
            // Half width at half height 1: exp(-ln 2 · u²).
            return exp(-0.693_147 * u * u)
        case .inductive(let undershoot):
            // A Lorentzian (the Karlqvist head's field) steeper before the reversal than after,
            // and a slower negative lobe behind it.
            let a = u < 0 ? u / 0.8 : u / 1.25
            let main = 1 / (1 + a * a)
            let d = (u - 2.5) / 2.2
            return main - undershoot * exp(-d * d)
        }
    }

    /// The median over the reversals of the largest |voltage| within `reach` mm of each
    /// (`positions`: the card's position at each sample, increasing).
    static func medianPeak(_ x: [Double], positions: [Double], reversals: [Reversal], reach: Double) -> Double {
        var peaks: [Double] = []
        peaks.reserveCapacity(reversals.count)
        var i = 0
        for r in reversals {
            while i < positions.count && positions[i] < r.position - reach { i += 1 }
            var j = i, top = 0.0
            while j < positions.count && positions[j] <= r.position + reach {
                top = max(top, abs(x[j]))
                j += 1
            }
            if j > i { peaks.append(top) }
        }
        guard !peaks.isEmpty else { return x.map(abs).max() ?? 0 }
        peaks.sort()
        return peaks[peaks.count / 2]
    }
}

/// The card's motion: speed as a function of position along it, and position as a function of
/// time (integrated).
struct Motion {
    let knots: [Double]
    let length: Double

    /// Speed (mm/s) at `x` mm from the leading edge: a raised-cosine blend of the knots.
    func speed(at x: Double) -> Double {
        guard knots.count > 1 else { return knots.first ?? 100 }
        let f = min(max(x / length, 0), 1) * Double(knots.count - 1)
        let k = min(Int(f), knots.count - 2)
        let w = 0.5 - 0.5 * cos(Double.pi * (f - Double(k)))
        return knots[k] * (1 - w) + knots[k + 1] * w
    }

    /// Seconds from the leading edge to `x` (trapezoids of 0.01 mm; before the card the first
    /// speed holds).
    func time(at x: Double) -> Double {
        if x <= 0 { return x / speed(at: 0) }
        let step = 0.01
        var t = 0.0, p = 0.0
        while p + step < x {
            t += step * 0.5 * (1 / speed(at: p) + 1 / speed(at: p + step))
            p += step
        }
        return t + (x - p) / speed(at: x)
    }

    /// Positions and speeds at `t0`, `t0 + step`, …: the card's path, integrated (midpoint).
    func trace(from t0: Double, step: Double, into positions: inout [Double], speeds: inout [Double]) {
        // Before the card reaches the head: the first speed, back from x = 0 at t = 0.
        var x = t0 < 0 ? t0 * speed(at: 0) : position(at: t0)
        for i in positions.indices {
            let v = x < 0 ? speed(at: 0) : (x > length ? speed(at: length) : speed(at: x))
            positions[i] = x
            speeds[i] = v
            let mid = x + 0.5 * step * v
            x += step * (mid < 0 || mid > length ? v : speed(at: mid))
        }
    }

    private func position(at t: Double) -> Double {
        var x = 0.0, time = 0.0
        let step = 1e-5
        while time < t {
            x += step * speed(at: x)
            time += step
        }
        return x
    }
}

/// How the pulse width wanders along the card: a smooth random factor 1 ± `amount`.
struct Wander {
    let amount: Double
    let phases: [Double]

    init(amount: Double, random: inout PCG) {
        self.amount = amount
        phases = (0..<3).map { _ in 2 * Double.pi * random.uniform() }
    }

    func factor(at f: Double) -> Double {
        guard amount > 0 else { return 1 }
        let s = (sin(2 * .pi * 0.7 * f + phases[0]) + sin(2 * .pi * 1.9 * f + phases[1]) + sin(2 * .pi * 3.1 * f + phases[2])) / 3
        return 1 + amount * max(-1, min(1, 1.6 * s))
    }
}

/// A permuted congruential generator (PCG-XSH-RR), this model's own.
struct PCG {
    private var state: UInt64
    private static let multiplier: UInt64 = 6_364_136_223_846_793_005
    private static let increment: UInt64 = 1_442_695_040_888_963_407

    init(seed: UInt64) {
        state = 0
        _ = next()
        state &+= seed
        _ = next()
    }

    mutating func next() -> UInt32 {
        let old = state
        state = old &* Self.multiplier &+ Self.increment
        let xorShifted = UInt32(truncatingIfNeeded: ((old >> 18) ^ old) >> 27)
        let rotation = UInt32(truncatingIfNeeded: old >> 59)
        return xorShifted >> rotation | xorShifted << ((~rotation &+ 1) & 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next()) / 4_294_967_296 }

    /// Standard normal (Box-Muller).
    mutating func gaussian() -> Double {
        let u = max(uniform(), 1e-12), v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}
