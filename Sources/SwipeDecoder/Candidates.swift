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
    /// A transition's pulse must reach this fraction of the running pulse height.
    var threshold: Float
    /// How much of each interval's error the clock takes into its period (0-1).
    var clockGain: Double
    /// The clock walks from the last transition to the first.
    var backward: Bool

    init(_ frontEnd: FrontEnd, _ clocking: Clocking) {
        front = frontEnd.front
        smoothing = frontEnd.smoothing
        threshold = clocking.threshold
        clockGain = clocking.clockGain
        backward = clocking.backward
    }

    /// How the samples become a conditioned signal: settings that share one see the same
    /// transitions.
    struct FrontEnd: Sendable, Hashable {
        var front: Front
        var smoothing: Double
    }

    /// How the transitions are picked from the conditioned signal and clocked into cells.
    struct Clocking: Sendable, Hashable {
        var threshold: Float
        var clockGain: Double
        var backward: Bool
    }

    var frontEnd: FrontEnd { FrontEnd(front: front, smoothing: smoothing) }

    /// The front ends, in the order they are tried (the first is the primary's).
    static let frontEnds: [FrontEnd] = [
        // Light smoothing: most swipes, at any speed the rate resolves.
        FrontEnd(front: .direct, smoothing: 0.12),
        // None: the fastest swipes, whose half-cells span two or three samples.
        FrontEnd(front: .direct, smoothing: 0),
        // More: noisy swipes (12-20 dB), whose noise spikes split or shift pulses.
        FrontEnd(front: .direct, smoothing: 0.25),
        // Slow swipes through an input AC-coupled at a few hundred hertz (a phone's, a USB
        // adapter's), whose pulses became doublets: the coupling undone at 500 Hz, then 200 Hz.
        FrontEnd(front: .inverseHighPass(500), smoothing: 0.12),
        FrontEnd(front: .inverseHighPass(200), smoothing: 0.12),
        // Heavy smoothing: slow, noisy swipes, whose pulses are wide and the noise is not.
        FrontEnd(front: .direct, smoothing: 0.45),
        // Both: slow, noisy swipes through a coupled input.
        FrontEnd(front: .inverseHighPass(500), smoothing: 0.35),
        FrontEnd(front: .inverseHighPass(200), smoothing: 0.35),
    ]

    /// The clockings tried on each front end, in order.
    static let clockings: [Clocking] = [
        // The primary: a third of the pulse height, a clock that follows a hand's usual changes.
        Clocking(threshold: 0.3, clockGain: 0.25, backward: false),
        // The same from the other end: a swipe whose start is damaged or hurried.
        Clocking(threshold: 0.3, clockGain: 0.25, backward: true),
        // A lower threshold: pulses weakened by a worn stripe or a head lifting off.
        Clocking(threshold: 0.2, clockGain: 0.25, backward: false),
        // A higher one: spikes of noise or crosstalk between the pulses.
        Clocking(threshold: 0.45, clockGain: 0.25, backward: false),
        // A steadier clock: jittery transitions at a steady speed.
        Clocking(threshold: 0.3, clockGain: 0.1, backward: false),
        // A quicker clock: a hand that speeds up or slows down hard.
        Clocking(threshold: 0.3, clockGain: 0.45, backward: false),
        // Weak and jittery, from the other end.
        Clocking(threshold: 0.2, clockGain: 0.1, backward: true),
    ]

    /// Every front end with every clocking: primary first, and settings that share a front end
    /// adjacent so its work is shared.
    static let all: [CandidateSetting] = frontEnds.flatMap { f in clockings.map { CandidateSetting(f, $0) } }
}

/// Which pass a read came from. Acceptance asks it: correction, and a track without payment
/// structure, stand on the primary's word alone.
enum CandidateRole: Sendable, Hashable {
    /// The plain pass that measured the typical interval (see `SwipeAnalyzer.analyze`); not
    /// the primary, so nothing it reads needs the primary's say-so.
    case plainPass
    /// `CandidateSetting.all[0]`.
    case primary
    /// Any other setting (its index in `CandidateSetting.all`).
    case fallback(Int)
    /// The sequence detector (`SequenceDetector`), tried when every setting failed on a swipe
    /// too fast for the transition picker.
    case sequence

    init(index: Int) { self = index == 0 ? .primary : .fallback(index) }
}

/// What one candidate produced: the bit clock's output over its transitions.
struct Attempt {
    /// The candidate's index in `CandidateSetting.all`.
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
