public import Magstripe
public import Secrets

/// A flux transition as the detector found it.
public struct FluxTransition: Sendable, Hashable {
    /// Position in samples from the start of the analysed segment, between samples.
    public var position: Double
    /// Height above the local baseline (always positive).
    public var amplitude: Float
    /// +1 for a positive pulse, -1 for a negative one.
    public var polarity: Int8
}

/// Why a track did not read, in terms a person can act on.
public enum TrackFailure: Sendable, Hashable, CustomStringConvertible {
    /// The bits did not form a valid track (parity, LRC, sentinels, framing).
    case read(TrackReadError)
    /// Parity and LRC hold but there are fewer than `SwipeDecoder.minimumDataCharacters`
    /// characters: too short to rule out chance.
    case tooShort(Int)
    /// A payment layout whose fields break the PAN rule or are implausible.
    case implausible(CardFieldError)
    /// A read that needs a second opinion (a track without payment structure, or a corrected
    /// read, from a fallback setting) and no independent reading (another front end) agreed.
    case unconfirmed
    /// Parity and LRC hold, but the timing does not support the read: several doubtful bits, a
    /// bridged guess, or a correction the rules do not allow (a bit the clock was sure of, a
    /// fallback setting, another doubtful bit beside it). The signature of a clock slip or a
    /// damaged stripe passing the checks by chance.
    case doubtful

    public var code: String {
        switch self {
        case .read(let e): e.code
        case .tooShort: "tooShort"
        case .implausible: "implausible"
        case .unconfirmed: "unconfirmed"
        case .doubtful: "doubtful"
        }
    }

    public var description: String {
        switch self {
        case .read(let e): e.description
        case .tooShort(let n): "only \(n) characters"
        case .implausible(let e): "fields implausible: \(e)"
        case .unconfirmed: "unconfirmed read without card structure"
        case .doubtful: "bit timing too uncertain to trust the checks"
        }
    }
}

public enum TrackStatus: Sendable, Hashable {
    case ok
    case failed(TrackFailure)

    public var code: String {
        switch self {
        case .ok: "ok"
        case .failed(let f): f.code
        }
    }
}

/// Where a decoded track lies among the swipe's cells: indices of `SwipeTimeline.bits`, in time
/// order (cell k lies between `cellBoundaries[k]` and `[k + 1]`), so that the diagnose plot can
/// hide exactly the cells that hold masked characters. Only positions, no bit or character of
/// the card.
public struct TrackFrame: Sendable, Hashable {
    /// Each character's cells, in card order: the start sentinel first, the end sentinel last.
    /// In a reverse swipe the card's order runs backwards in time, so the ranges descend.
    public var characterCells: [Range<Int>]
    /// The LRC's cells (after the end sentinel on the card).
    public var lrcCells: Range<Int>

    public init(characterCells: [Range<Int>], lrcCells: Range<Int>) {
        self.characterCells = characterCells
        self.lrcCells = lrcCells
    }

    /// A frame of `characters` characters (sentinels included) of `width` cells each, the LRC
    /// after them, starting at `start` in a bit string of `cellCount` cells that runs against
    /// time when `againstTime` (a reverse swipe read forward, or the other way round).
    public init(start: Int, characters: Int, width: Int, cellCount: Int, againstTime: Bool) {
        // Cells j..<j + width of the bit string, as cells of the timeline.
        func cells(_ j: Int) -> Range<Int> {
            againstTime ? (cellCount - j - width)..<(cellCount - j) : j..<(j + width)
        }
        characterCells = (0..<characters).map { cells(start + $0 * width) }
        lrcCells = cells(start + characters * width)
    }

    /// Whether card order runs backwards in time (a reverse swipe).
    public var isReversed: Bool { lrcCells.lowerBound < (characterCells.first?.lowerBound ?? 0) }

    /// The cell where the start sentinel begins (its first bit on the card).
    public var startSentinelCell: Int? {
        guard let first = characterCells.first else { return nil }
        return isReversed ? first.upperBound - 1 : first.lowerBound
    }

    /// Every cell of the track, start sentinel through LRC, in time order.
    public var cells: Range<Int> {
        let all = characterCells + [lrcCells]
        return (all.map(\.lowerBound).min() ?? 0)..<(all.map(\.upperBound).max() ?? 0)
    }
}

/// Why a track in the 5-bit format was named Track 2 (75 bpi) or Track 3 (210 bpi): the two
/// give the same cell time at speeds 2.8 times apart, and the bits alone do not tell them apart.
public enum DensityBasis: String, Sendable, Hashable {
    /// The text is longer than Track 2 holds: Track 3.
    case characters
    /// Only this density puts the swipe's mean speed within `SwipeLimits.plausibleSpeed`.
    case speed
    /// Both densities (or neither) give a plausible speed: Track 2 is assumed, the 5-bit track
    /// every payment card carries.
    case assumed
}

/// One track of a swipe. `text` and `content` hold clear card data: never log or print them.
public struct TrackRead: Sendable, Hashable {
    /// The format the sentinels and checks identified (nil when nothing framed).
    public var format: TrackFormat?
    /// For a read in the 5-bit format, what named it Track 2 or Track 3 (nil for Track 1, and
    /// for a read that found no format).
    public var densityBasis: DensityBasis?
    public var status: TrackStatus
    /// Start sentinel through end sentinel, ASCII; only for `ok` reads. Wiped when the last
    /// holder drops it.
    public var text: SecretText?
    public var content: TrackContent?
    /// Bits that single-error correction flipped.
    public var corrections: Int
    /// The masked form, safe to show; only for `ok` reads.
    public var masked: MaskedTrack?
    /// The input channel the track came from.
    public var channel: Int
    /// The least sure bit decision inside the track (0 = a guess, 1 = clean).
    public var weakest: Float?
    /// Bits inside the track decided with confidence under 0.25.
    public var weakBits: Int = 0
    /// How sure the clock was of the bit that correction flipped.
    public var correctedConfidence: Float?
    /// Where the characters lie among the swipe's cells; for reads that framed a track (not
    /// for failed reads, whose text is dropped).
    public var frame: TrackFrame?

    public var isOK: Bool { status == .ok }

    public init(format: TrackFormat?, status: TrackStatus, text: SecretText?, content: TrackContent?,
                corrections: Int, masked: MaskedTrack?, channel: Int) {
        self.format = format
        self.status = status
        self.text = text
        self.content = content
        self.corrections = corrections
        self.masked = masked
        self.channel = channel
    }
}

/// Why a swipe did not read, in terms the merchant or technician can act on.
public enum SwipeProblem: String, Sendable, Hashable, CaseIterable {
    case tooFast, tooSlow, unevenSpeed, partialSwipe, weakSignal, clipped, noisy, notAMagstripe
}

/// Speeds over a swipe, cm/s, from the cell period and the detected format's density.
public struct SpeedFigures: Sendable, Hashable {
    public var mean: Double
    public var min: Double
    public var max: Double
}

/// Signal quality over a swipe.
public struct SwipeQuality: Sendable, Hashable {
    /// Largest |sample| in the swipe, dBFS.
    public var peakDBFS: Double
    /// Median pulse height over the noise RMS before the swipe, dB.
    public var snrDB: Double
    /// RMS deviation of cell boundaries from the tracking clock, as a fraction of the cell.
    public var jitter: Double
    /// Fewest samples per half-cell anywhere in the swipe.
    public var minimumSamplesPerHalfCell: Double
    /// Fraction of swipe samples at or near full scale.
    public var clippedFraction: Double
    /// Which candidate setting produced the accepted read (0 = primary); nil if none read.
    public var candidate: Int?
    /// Candidate settings tried.
    public var candidatesTried: Int
    /// Median pulse height, dBFS (the level `snrDB` sets against the noise); nil when no
    /// transition was found.
    public var pulseDBFS: Double? = nil
}

/// Where a swipe's flux transitions and bit cells lie in time (for the diagnose plot). It
/// encodes the card as surely as the bits do: clear card data.
public struct SwipeTimeline: Sendable, Hashable {
    /// Stream seconds of each transition the clock used, ascending.
    public var transitions: [Double]
    /// Stream seconds of the cell boundaries, ascending: cell k lies between boundaries k and
    /// k + 1.
    public var cellBoundaries: [Double]
    /// The cells' bits in time order.
    public var bits: [UInt8]

    public init(transitions: [Double], cellBoundaries: [Double], bits: [UInt8]) {
        self.transitions = transitions
        self.cellBoundaries = cellBoundaries
        self.bits = bits
    }
}

/// One swipe: its tracks, direction, timing, speed and quality.
public struct Swipe: Sendable, Hashable {
    /// Seconds from the start of the stream.
    public var start: Double
    public var end: Double
    public var direction: SwipeDirection?
    public var tracks: [TrackRead]
    public var speed: SpeedFigures?
    public var quality: SwipeQuality
    /// Set when no track read: the most likely reason.
    public var problem: SwipeProblem?
    /// The F2F bits the clock read, in the clock's order: time order, reversed when a
    /// backward-clocking candidate read it (clear card data: never log or print them). The
    /// timeline's `bits` are always in time order.
    /// For stripes that are not ISO tracks, and for analysis.
    public var bits: [UInt8] = []
    /// With `DecoderConfiguration.keepTimeline`: transitions and cells in time.
    public var timeline: SwipeTimeline?
    /// Cells where the clock skipped extrema as noise.
    public var repairedCells = 0
    /// Cells bridged with zeros across a stretch without any transition (a dropout on the
    /// stripe, or a gap in a non-ISO format).
    public var bridgedCells = 0
    /// The stream position, in samples, at which this result was decided: where the segment
    /// closed (the gate's decision, or the end of the stream), and for a reader of several heads
    /// where the merge let the swipe go. Against the swipe's true end it is the latency in audio
    /// time, whatever the machine's pace.
    public var decidedAt: Int64?

    public var duration: Double { end - start }
    public var readTracks: [TrackRead] { tracks.filter(\.isOK) }
}
