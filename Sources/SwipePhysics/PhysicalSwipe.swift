public import Magstripe
#if canImport(Glibc)
import Glibc
#endif

/// A second model of a swipe, built apart from `SwipeSynth` (no code of its pulses, motion or
/// channel is shared; only the card's bits come from `Magstripe`), so that the decoder can be
/// measured against a world it was not tuned on.
///
/// Its physics: the stripe holds flux reversals of alternating sign at the cell boundaries and
/// mid-cell for a one. The head's flux from a reversal at `x_k` is a smoothed step of width `w`
/// (the head gap and the spacing loss); the voltage is the time derivative of the flux,
/// `v(t) · dΦ/dx`, so each pulse has the shape of the step's slope, a height proportional to
/// the card's speed and a duration `w / v`. The card's position follows a speed that is a
/// function of where the card is (a hand that speeds up or slows down along it). The sound
/// card adds, in this order: an AC coupling, a preamplifier whose gain may drive the pulses
/// past full scale, an AGC that pumps on the swipe, white noise at the input, a hard clip at
/// full scale, an anti-alias low-pass while decimating from four times the rate, and 16-bit
/// steps.
public struct PhysicalSwipe: Sendable, Hashable {
    /// The slope of the head's flux step, which is each pulse's shape.
    public enum Pulse: Sendable, Hashable {
        /// An inductive head through an AC-coupled input: a pulse steeper on its leading side,
        /// followed by an undershoot of this fraction of its height.
        case inductive(undershoot: Double)
        /// A Gaussian-smoothed flux step: a Gaussian pulse.
        case gaussian
    }

    /// Hum from the mains at the input: its level relative to the median pulse peak (dB) and
    /// its fundamental (50 or 60 Hz), with the odd harmonics a rectifier leaves.
    public struct MainsHum: Sendable, Hashable {
        public var level: Double
        public var frequency: Double

        public init(level: Double, frequency: Double) {
            self.level = level
            self.frequency = frequency
        }
    }

    /// A gain that follows the swipe's own envelope.
    public struct AGC: Sendable, Hashable {
        /// Seconds for the gain to come down (5-20 ms) and go back up (200-500 ms).
        public var attack: Double
        public var release: Double
        /// The most it takes off, dB.
        public var depth: Double

        public init(attack: Double, release: Double, depth: Double) {
            self.attack = attack
            self.release = release
            self.depth = depth
        }
    }

    public var text: String
    /// The bits written on the stripe between the leading and trailing clocking zeros, when they
    /// are not `text`'s (a damaged stripe: the false-accept trials); nil: `text` encoded.
    public var writtenBits: [UInt8]?
    public var format: TrackFormat
    public var direction: SwipeDirection
    public var sampleRate: Int
    /// Speeds (cm/s) at evenly spaced points along the card, leading edge first; between them
    /// the speed follows a smooth (raised-cosine) curve.
    public var speedKnots: [Double]
    public var pulse: Pulse
    /// The pulse's full width at half height on the stripe (PW50, µm; 20-60 for real heads), and
    /// how far it wanders along the card (±fraction: a head lifting, a worn stripe).
    public var pulseWidth: Double
    public var widthWander: Double
    /// Standard deviation of each reversal's position, fraction of a cell.
    public var jitter: Double
    /// The recording density's error: +0.02 packs the cells 2 % closer.
    public var densityError: Double
    /// The median pulse peak over the noise RMS at the input, dB.
    public var snr: Double
    /// The median pulse peak after the preamplifier, dB relative to full scale (above 0: clipped).
    public var drive: Double
    public var agc: AGC?
    /// AC-coupling corner (Hz).
    public var coupling: Double
    /// Mains hum at the input.
    public var hum: MainsHum?
    /// No quiet before or after: the recording starts and ends inside the swipe's clocking zeros.
    public var trimmed: Bool
    public var seed: UInt64

    public init(text: String, format: TrackFormat, direction: SwipeDirection = .forward, sampleRate: Int = 44_100,
                speedKnots: [Double] = [30], pulse: Pulse = .inductive(undershoot: 0.2), pulseWidth: Double = 40,
                widthWander: Double = 0, jitter: Double = 0, densityError: Double = 0, snr: Double = 30,
                drive: Double = -12, agc: AGC? = nil, coupling: Double = 20, hum: MainsHum? = nil,
                trimmed: Bool = false, seed: UInt64 = 1) {
        self.text = text
        self.format = format
        self.direction = direction
        self.sampleRate = sampleRate
        self.speedKnots = speedKnots
        self.pulse = pulse
        self.pulseWidth = pulseWidth
        self.widthWander = widthWander
        self.jitter = jitter
        self.densityError = densityError
        self.snr = snr
        self.drive = drive
        self.agc = agc
        self.coupling = coupling
        self.hum = hum
        self.trimmed = trimmed
        self.seed = seed
    }

    /// The fastest speed over the card (cm/s).
    public var fastest: Double { speedKnots.max() ?? 0 }

    /// Samples per half-cell at the swipe's fastest point: the bench's one definition.
    public var samplesPerHalfCellAtFastest: Double {
        Double(sampleRate) / (2 * format.bitsPerMillimetre * fastest * 10)
    }
}
