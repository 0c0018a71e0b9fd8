public import Magstripe

/// How fast the card moves past the head over the course of a swipe, in mm/s, as a function of
/// how far it has travelled (0 at the start of the swipe, 1 at the end).
public enum SpeedProfile: Sendable, Hashable {
    case constant(Double)
    /// Constant acceleration from one speed to another (v² grows linearly with distance).
    case accelerating(from: Double, to: Double)
    /// Constant deceleration: `accelerating` with the speeds the other way round.
    case decelerating(from: Double, to: Double)
    /// A hand's stroke: slow at both ends, fastest in the middle.
    case riseAndFall(slowest: Double, fastest: Double)
    /// Random speed changes between `mean / √ratio` and `mean · √ratio`, reaching both; a new
    /// target every `1 / changes` of the travel, joined smoothly. Drawn from the scenario's seed.
    case jerky(mean: Double, ratio: Double, changes: Int)
    /// Speeds at evenly spaced points of the travel, joined linearly.
    case custom([Double])

    /// The slowest and fastest speed the profile reaches (for `jerky`, by construction).
    public var range: ClosedRange<Double> {
        switch self {
        case .constant(let v): v...v
        case .accelerating(let a, let b), .decelerating(let a, let b): min(a, b)...max(a, b)
        case .riseAndFall(let slow, let fast): min(slow, fast)...max(slow, fast)
        case .jerky(let mean, let ratio, _):
            (mean / ratio.squareRoot())...(mean * ratio.squareRoot())
        case .custom(let speeds): (speeds.min() ?? 0)...(speeds.max() ?? 0)
        }
    }

    /// Fastest over slowest.
    public var ratio: Double { range.upperBound / range.lowerBound }
}

/// What is written on one track of the stripe, and how well.
public struct StripeTrack: Sendable, Hashable {
    public var format: TrackFormat
    /// The bits in card order (as a forward swipe meets them), clocking zeros included.
    public var bits: [UInt8]
    /// The text the bits encode, when they encode one.
    public var text: String?
    /// Fractional error of the recording density: +0.03 packs the cells 3 % closer than nominal.
    public var densityError: Double = 0
    /// Standard deviation of each flux transition's position, as a fraction of the cell length.
    public var jitter: Double = 0
    /// Standard deviation of each pulse's amplitude, as a fraction (uneven magnetisation).
    public var amplitudeVariation: Double = 0
    /// Weak spots: the amplitude factor of particular flux transitions, by their index in card
    /// order (0 = the first transition of the encoded region).
    public var weakTransitions: [Int: Double] = [:]

    /// A track holding `text`, with the clocking zeros a real card has: from just inside the
    /// card edge to the start sentinel at 7.44 mm, and after the LRC to the far edge.
    public init(text: String, format: TrackFormat, card: CardGeometry = .iso7810) throws(TrackEncodingError) {
        let values = try TrackEncoding.values(of: text, format: format)
        let cell = format.cellLengthMillimetres
        let lead = max(1, Int((card.firstDataBitFromEdge - card.encodedMargin) / cell))
        let used = lead + (values.count + 1) * format.characterWidth
        let capacity = Int((card.length - 2 * card.encodedMargin) / cell)
        let trail = max(1, capacity - used)
        self.format = format
        self.bits = TrackEncoding.bits(forValues: values, format: format, leadingZeros: lead, trailingZeros: trail)
        self.text = text
    }

    /// A track of arbitrary bits (damaged data, non-ISO cards such as transit tickets).
    public init(bits: [UInt8], format: TrackFormat) {
        self.format = format
        self.bits = bits
        self.text = nil
    }
}

/// ISO/IEC 7810 ID-1 card dimensions that place the data on the stripe.
public struct CardGeometry: Sendable, Hashable {
    /// Card length in mm.
    public var length: Double
    /// Distance from the card's leading edge to the first data bit (ISO/IEC 7811: 7.44 mm).
    public var firstDataBitFromEdge: Double
    /// Unencoded margin at each edge, mm.
    public var encodedMargin: Double

    public static let iso7810 = CardGeometry(length: 85.60, firstDataBitFromEdge: 7.44, encodedMargin: 0.5)
}

/// How the card moves.
public struct Motion: Sendable, Hashable {
    public var speed: SpeedProfile
    public var direction: SwipeDirection
    /// The part of the card's length that passes the head: `0...1` for a whole swipe, `0...0.5`
    /// for a card pulled back half-way.
    public var travel: ClosedRange<Double>

    public init(speed: SpeedProfile, direction: SwipeDirection = .forward, travel: ClosedRange<Double> = 0...1) {
        self.speed = speed
        self.direction = direction
        self.travel = travel
    }
}

/// The read head.
public struct HeadModel: Sendable, Hashable {
    /// Width at half height of one flux transition's pulse, measured on the card, µm (20 to 60
    /// for real heads). Its width in time is this divided by the speed.
    public var pulseWidthMicrometres: Double = 40

    public init(pulseWidthMicrometres: Double = 40) {
        self.pulseWidthMicrometres = pulseWidthMicrometres
    }
}

/// Mains hum: a fundamental and its harmonics, falling as 1/n.
public struct Hum: Sendable, Hashable {
    /// 50 or 60 Hz.
    public var frequency: Double
    /// Level of the fundamental relative to the median pulse peak, dB.
    public var level: Double
    public var harmonics: Int

    public init(frequency: Double = 50, level: Double = -10, harmonics: Int = 3) {
        self.frequency = frequency
        self.level = level
        self.harmonics = harmonics
    }
}

/// Impulsive clicks (a cable knocked, a switch), at random times.
public struct Clicks: Sendable, Hashable {
    public var perSecond: Double
    /// Click peak relative to the median pulse peak, dB.
    public var level: Double

    public init(perSecond: Double = 4, level: Double = 6) {
        self.perSecond = perSecond
        self.level = level
    }
}

/// A slowly varying gain (automatic gain control breathing).
public struct GainDrift: Sendable, Hashable {
    /// Peak-to-peak swing, dB.
    public var depth: Double
    /// Period of the swing, seconds.
    public var period: Double

    public init(depth: Double = 6, period: Double = 0.7) {
        self.depth = depth
        self.period = period
    }
}

/// The sound card between the head and the samples.
public struct AudioPath: Sendable, Hashable {
    public var sampleRate: Int = 44_100
    /// Level of the median pulse peak, dBFS (before gain drift and clipping).
    public var level: Double = -12
    /// Band-limit the head signal to 0.45 × the sample rate before sampling, as a codec does.
    public var antiAlias: Bool = true
    /// AC-coupling high-pass corner, Hz (mic inputs: 20 Hz to a few hundred); nil for DC-coupled.
    public var highPass: Double? = 20
    /// Poles of the high-pass (1 = one coupling capacitor).
    public var highPassOrder: Int = 1
    /// White noise: median pulse peak over noise RMS, dB; nil for none.
    public var snr: Double?
    public var hum: Hum?
    public var clicks: Clicks?
    /// DC offset (mic bias, codec offset), as a fraction of full scale.
    public var dcOffset: Double = 0
    public var gainDrift: GainDrift?
    /// Absolute level where the input clips, fraction of full scale.
    public var clipLevel: Double = 1
    /// Round to 16-bit steps, as a 16-bit capture does.
    public var quantize16: Bool = true
    /// Audio before the card reaches the head and after it leaves, seconds.
    public var leadingSilence: Double = 0.05
    public var trailingSilence: Double = 0.05

    public init(sampleRate: Int = 44_100) {
        self.sampleRate = sampleRate
    }
}

/// Everything that determines a synthesized swipe. The same scenario renders the same samples.
public struct SwipeScenario: Sendable, Hashable {
    /// One track per head; each becomes one channel.
    public var tracks: [StripeTrack]
    public var motion: Motion
    public var head: HeadModel
    public var audio: AudioPath
    public var seed: UInt64

    public init(tracks: [StripeTrack], motion: Motion, head: HeadModel = HeadModel(),
                audio: AudioPath = AudioPath(), seed: UInt64 = 1) {
        self.tracks = tracks
        self.motion = motion
        self.head = head
        self.audio = audio
        self.seed = seed
    }
}
