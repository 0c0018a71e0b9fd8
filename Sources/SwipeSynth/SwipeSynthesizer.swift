public import Magstripe
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One pulse the head produced: a flux transition passing it.
public struct HeadPulse: Sendable, Hashable {
    /// Seconds from the first sample.
    public var time: Double
    /// +1 or -1: pulses alternate in sign.
    public var polarity: Int8
    /// Card speed at that moment, mm/s.
    public var speed: Double
    /// Amplitude factor from a weak spot on the stripe (1 elsewhere).
    public var strength: Double = 1
}

/// The ground truth of one channel of a synthesized swipe.
public struct RenderedTrack: Sendable, Hashable {
    public var format: TrackFormat
    /// The bits in the order the head met them (reversed for a reverse swipe).
    public var bits: [UInt8]
    public var text: String?
    /// Every pulse, in time order.
    public var pulses: [HeadPulse]
}

/// A rendered swipe: samples plus everything that went into them.
public struct SynthesizedSwipe: Sendable {
    public var sampleRate: Int
    /// One channel per track, samples in [-1, 1).
    public var channels: [[Float]]
    public var tracks: [RenderedTrack]
    /// Time of the first and last pulse of any channel, seconds.
    public var swipeStart: Double
    public var swipeEnd: Double
    /// Slowest and fastest speed at any pulse, mm/s.
    public var speedRange: ClosedRange<Double>
    /// Median pulse peak after scaling to the configured level (before drift and clipping).
    public var pulsePeak: Double
    /// RMS of the added white noise (0 without noise).
    public var noiseRMS: Double

    public var frameCount: Int { channels.first?.count ?? 0 }
    public var duration: Double { Double(frameCount) / Double(sampleRate) }
}

/// Renders swipes from the physical model: text → bits → flux transitions on the card → head
/// pulses at the speed profile → the sound card's filters, noise and quantisation.
public enum SwipeSynthesizer {
    public static func render(_ scenario: SwipeScenario) -> SynthesizedSwipe {
        precondition(!scenario.tracks.isEmpty, "a scenario needs at least one track")
        let fs = Double(scenario.audio.sampleRate)
        precondition(fs >= 1_000, "sample rate too low")
        var rng = SynthRandom(seed: scenario.seed)
        let card = CardGeometry.iso7810

        // The card as long as the longest track needs (a real track always fits the card).
        var cardLength = card.length
        for track in scenario.tracks {
            let cell = track.format.cellLengthMillimetres / (1 + track.densityError)
            cardLength = max(cardLength, card.encodedMargin * 2 + Double(track.bits.count) * cell)
        }
        let travelStart = scenario.motion.travel.lowerBound * cardLength
        let travelEnd = scenario.motion.travel.upperBound * cardLength
        let clock = TravelClock(profile: scenario.motion.speed, from: travelStart, to: travelEnd, rng: &rng)
        let lead = scenario.audio.leadingSilence
        let duration = lead + clock.totalTime + scenario.audio.trailingSilence
        let frames = max(1, Int((duration * fs).rounded(.up)))

        var channels: [[Float]] = []
        var rendered: [RenderedTrack] = []
        var peaks: [Double] = []
        var noiseRMS = 0.0
        for track in scenario.tracks {
            var trackRNG = rng.fork()
            let pulses = placePulses(track, direction: scenario.motion.direction, cardLength: cardLength,
                                     margin: card.encodedMargin, clock: clock, lead: lead, rng: &trackRNG)
            var samples = sampleHead(pulses: pulses, track: track, head: scenario.head, audio: scenario.audio,
                                     frames: frames, rng: &trackRNG)
            if let corner = scenario.audio.highPass {
                for _ in 0..<max(1, scenario.audio.highPassOrder) {
                    highPass(&samples, corner: corner, sampleRate: fs)
                }
            }
            let peak = medianPulsePeak(samples, pulses: pulses, head: scenario.head, sampleRate: fs)
            let target = pow(10, scenario.audio.level / 20)
            let scale = Float(peak > 0 ? target / peak : 1)
            for i in samples.indices { samples[i] *= scale }
            noiseRMS = impair(&samples, path: scenario.audio, pulsePeak: target, rng: &trackRNG)
            peaks.append(target)
            channels.append(samples)
            let headBits = scenario.motion.direction == .forward ? track.bits : track.bits.reversed()
            rendered.append(RenderedTrack(format: track.format, bits: headBits, text: track.text, pulses: pulses))
        }

        let all = rendered.flatMap(\.pulses)
        let times = all.map(\.time)
        let speeds = all.map(\.speed)
        return SynthesizedSwipe(
            sampleRate: scenario.audio.sampleRate, channels: channels, tracks: rendered,
            swipeStart: times.min() ?? lead, swipeEnd: times.max() ?? lead,
            speedRange: (speeds.min() ?? 0)...(speeds.max() ?? 0),
            pulsePeak: peaks.first ?? 0, noiseRMS: noiseRMS)
    }

    // MARK: - The card

    /// Flux transitions in card order, then in the order and at the times the head meets them.
    static func placePulses(
        _ track: StripeTrack, direction: SwipeDirection, cardLength: Double, margin: Double,
        clock: TravelClock, lead: Double, rng: inout SynthRandom
    ) -> [HeadPulse] {
        let cell = track.format.cellLengthMillimetres / (1 + track.densityError)
        let sigma = track.jitter * cell
        var positions: [Double] = []
        positions.reserveCapacity(track.bits.count * 2 + 1)
        for (k, bit) in track.bits.enumerated() {
            positions.append(margin + Double(k) * cell)
            if bit != 0 { positions.append(margin + (Double(k) + 0.5) * cell) }
        }
        positions.append(margin + Double(track.bits.count) * cell)
        if sigma > 0 {
            for i in positions.indices { positions[i] += sigma * rng.gaussian() }
        }
        var travel = positions.enumerated().map { (index: $0.offset, s: direction == .forward ? $0.element : cardLength - $0.element) }
        travel.sort { $0.s < $1.s }
        var pulses: [HeadPulse] = []
        pulses.reserveCapacity(travel.count)
        var polarity: Int8 = rng.uniform() < 0.5 ? 1 : -1
        for (index, s) in travel where s >= clock.start && s <= clock.end {
            pulses.append(HeadPulse(time: lead + clock.time(at: s), polarity: polarity, speed: clock.speed(at: s),
                                    strength: track.weakTransitions[index] ?? 1))
            polarity = -polarity
        }
        return pulses
    }

    // MARK: - The head and the converter

    /// Oversampling used to band-limit the pulses before they are sampled.
    static func oversampling(_ audio: AudioPath) -> Int {
        audio.antiAlias ? max(2, Int((176_400 / Double(audio.sampleRate)).rounded(.up))) : 1
    }

    /// Sums Lorentzian pulses on an oversampled grid, low-passes at 0.45 fs and decimates.
    static func sampleHead(
        pulses: [HeadPulse], track: StripeTrack, head: HeadModel, audio: AudioPath,
        frames: Int, rng: inout SynthRandom
    ) -> [Float] {
        let fs = Double(audio.sampleRate)
        let m = oversampling(audio)
        let fsi = fs * Double(m)
        let kernel = m > 1 ? lowPassKernel(cutoff: 0.45 / Double(m), halfLength: 16 * m) : [1]
        let delay = kernel.count / 2
        let hiCount = (frames - 1) * m + kernel.count
        var hi = [Float](repeating: 0, count: hiCount)
        let pw50Millimetres = head.pulseWidthMicrometres / 1_000
        hi.withUnsafeMutableBufferPointer { buffer in
            for pulse in pulses {
                var amplitude = pulse.speed / 1_000 * pulse.strength
                if track.amplitudeVariation > 0 {
                    amplitude *= max(0.05, 1 + track.amplitudeVariation * rng.gaussian())
                }
                let halfWidth = pw50Millimetres / pulse.speed * fsi / 2      // hi-res samples
                let centre = pulse.time * fsi + Double(delay)
                let reach = 20 * halfWidth + 2
                let lo = max(0, Int((centre - reach).rounded(.down)))
                let hiIndex = min(hiCount - 1, Int((centre + reach).rounded(.up)))
                guard lo <= hiIndex else { continue }
                let a = Float(amplitude) * Float(pulse.polarity)
                let inverseWidth = 1 / halfWidth
                for i in lo...hiIndex {
                    let x = (Double(i) - centre) * inverseWidth
                    buffer[i] += a / Float(1 + x * x)
                }
            }
        }
        if m == 1 { return Array(hi.prefix(frames)) }
        var out = [Float](repeating: 0, count: frames)
        hi.withUnsafeBufferPointer { x in
            kernel.withUnsafeBufferPointer { h in
                out.withUnsafeMutableBufferPointer { y in
                    for n in 0..<frames {
                        let base = n * m
                        var acc: Float = 0
                        for j in 0..<h.count { acc += h[j] * x[base + j] }
                        y[n] = acc
                    }
                }
            }
        }
        return out
    }

    /// A Blackman-windowed sinc low-pass with unit DC gain; `cutoff` in cycles per sample.
    static func lowPassKernel(cutoff: Double, halfLength: Int) -> [Float] {
        let n = 2 * halfLength + 1
        var h = [Double](repeating: 0, count: n)
        for i in 0..<n {
            let k = Double(i - halfLength)
            let sinc = k == 0 ? 2 * cutoff : sin(2 * .pi * cutoff * k) / (.pi * k)
            let phase = 2 * .pi * Double(i) / Double(n - 1)
            let window = 0.42 - 0.5 * cos(phase) + 0.08 * cos(2 * phase)
            h[i] = sinc * window
        }
        let sum = h.reduce(0, +)
        return h.map { Float($0 / sum) }
    }

    /// One-pole RC high-pass (an AC-coupling capacitor).
    static func highPass(_ x: inout [Float], corner: Double, sampleRate: Double) {
        let rc = 1 / (2 * .pi * corner)
        let alpha = Float(rc / (rc + 1 / sampleRate))
        var previousIn: Float = 0
        var previousOut: Float = 0
        for i in x.indices {
            let input = x[i]
            previousOut = alpha * (previousOut + input - previousIn)
            previousIn = input
            x[i] = previousOut
        }
    }

    /// The median over pulses of the largest |sample| near each pulse.
    static func medianPulsePeak(_ x: [Float], pulses: [HeadPulse], head: HeadModel, sampleRate fs: Double) -> Double {
        guard !pulses.isEmpty else { return 0 }
        var peaks: [Float] = []
        peaks.reserveCapacity(pulses.count)
        for pulse in pulses {
            let centre = Int((pulse.time * fs).rounded())
            let halfWidth = head.pulseWidthMicrometres / 1_000 / pulse.speed * fs / 2
            let reach = max(1, Int(halfWidth.rounded()))
            var best: Float = 0
            for i in max(0, centre - reach)...min(x.count - 1, centre + reach) { best = max(best, abs(x[i])) }
            peaks.append(best)
        }
        peaks.sort()
        return Double(peaks[peaks.count / 2])
    }

    /// Hum, noise, gain drift, clicks, DC offset, clipping and quantisation, in the order the
    /// signal meets them. Returns the RMS of the noise added.
    static func impair(_ x: inout [Float], path: AudioPath, pulsePeak: Double, rng: inout SynthRandom) -> Double {
        let fs = Double(path.sampleRate)
        if let hum = path.hum {
            let amplitude = pulsePeak * pow(10, hum.level / 20)
            for h in 1...max(1, hum.harmonics) {
                let a = amplitude / Double(h)
                let phase = 2 * .pi * rng.uniform()
                let step = 2 * .pi * hum.frequency * Double(h) / fs
                for i in x.indices { x[i] += Float(a * sin(step * Double(i) + phase)) }
            }
        }
        var sigma = 0.0
        if let snr = path.snr {
            sigma = pulsePeak / pow(10, snr / 20)
            for i in x.indices { x[i] += Float(sigma * rng.gaussian()) }
        }
        if let drift = path.gainDrift {
            let phase = 2 * .pi * rng.uniform()
            let step = 2 * .pi / (drift.period * fs)
            for i in x.indices {
                let db = drift.depth / 2 * sin(step * Double(i) + phase)
                x[i] *= Float(pow(10, db / 20))
            }
        }
        if let clicks = path.clicks, clicks.perSecond > 0 {
            let amplitude = pulsePeak * pow(10, clicks.level / 20)
            let decay = 0.15e-3 * fs                   // samples
            var t = -log(max(rng.uniform(), 1e-12)) / clicks.perSecond
            while Int(t * fs) < x.count {
                let start = Int(t * fs)
                let sign: Double = rng.uniform() < 0.5 ? -1 : 1
                let length = max(1, Int(5 * decay))
                for k in 0..<length where start + k < x.count {
                    x[start + k] += Float(sign * amplitude * exp(-Double(k) / max(decay, 0.5)))
                }
                t += -log(max(rng.uniform(), 1e-12)) / clicks.perSecond
            }
        }
        let dc = Float(path.dcOffset)
        let clip = Float(path.clipLevel)
        for i in x.indices {
            var v = x[i] + dc
            v = min(clip, max(-clip, v))
            if path.quantize16 {
                v = min(32_767, max(-32_768, (v * 32_768).rounded())) / 32_768
            }
            x[i] = v
        }
        return sigma
    }
}

/// Position along the swipe → time and speed, by integrating 1/v over the travel.
struct TravelClock {
    let start: Double
    let end: Double
    private let profile: ResolvedProfile
    private let times: [Double]
    private let step: Double

    static let gridSteps = 4_096

    init(profile: SpeedProfile, from start: Double, to end: Double, rng: inout SynthRandom) {
        self.start = start
        self.end = max(end, start + 1e-9)
        self.profile = ResolvedProfile(profile, rng: &rng)
        step = (self.end - start) / Double(TravelClock.gridSteps)
        var times = [Double](repeating: 0, count: TravelClock.gridSteps + 1)
        let p = self.profile
        for i in 0..<TravelClock.gridSteps {
            let u = (Double(i) + 0.5) / Double(TravelClock.gridSteps)
            times[i + 1] = times[i] + step / p.speed(at: u)
        }
        self.times = times
    }

    var totalTime: Double { times[times.count - 1] }

    /// Seconds from the start of the travel to travel position `s` (mm).
    func time(at s: Double) -> Double {
        let g = min(max((s - start) / step, 0), Double(TravelClock.gridSteps))
        let i = min(Int(g), TravelClock.gridSteps - 1)
        let f = g - Double(i)
        // Within a grid step the speed is nearly constant: interpolate by the local speed.
        return times[i] + f * (times[i + 1] - times[i])
    }

    func speed(at s: Double) -> Double {
        profile.speed(at: min(max((s - start) / (end - start), 0), 1))
    }
}

/// A speed profile with its random parts drawn.
struct ResolvedProfile {
    enum Shape {
        case constant(Double)
        case accelerating(Double, Double)
        case riseAndFall(Double, Double)
        case smooth([Double])
        case linear([Double])
    }
    let shape: Shape

    init(_ profile: SpeedProfile, rng: inout SynthRandom) {
        switch profile {
        case .constant(let v): shape = .constant(v)
        case .accelerating(let a, let b), .decelerating(let a, let b): shape = .accelerating(a, b)
        case .riseAndFall(let slow, let fast): shape = .riseAndFall(slow, fast)
        case .custom(let speeds): shape = speeds.count >= 2 ? .linear(speeds) : .constant(speeds.first ?? 100)
        case .jerky(let mean, let ratio, let changes):
            let n = max(1, changes)
            let lo = log(mean / ratio.squareRoot())
            let hi = log(mean * ratio.squareRoot())
            var knots = (0...n).map { _ in exp(lo + (hi - lo) * rng.uniform()) }
            // Reach both extremes, at different knots.
            let slowest = Int(rng.uniform() * Double(n + 1)) % (n + 1)
            let fastest = (slowest + 1 + Int(rng.uniform() * Double(n)) % n) % (n + 1)
            knots[slowest] = exp(lo)
            knots[fastest] = exp(hi)
            shape = .smooth(knots)
        }
    }

    /// Speed in mm/s at travel fraction u ∈ [0, 1].
    func speed(at u: Double) -> Double {
        switch shape {
        case .constant(let v):
            return v
        case .accelerating(let a, let b):
            return (a * a + (b * b - a * a) * u).squareRoot()
        case .riseAndFall(let slow, let fast):
            return slow + (fast - slow) * sin(.pi * u)
        case .smooth(let k), .linear(let k):
            let g = u * Double(k.count - 1)
            let i = min(Int(g), k.count - 2)
            var f = g - Double(i)
            if case .smooth = shape { f = (1 - cos(.pi * f)) / 2 }
            return k[i] + (k[i + 1] - k[i]) * f
        }
    }
}
