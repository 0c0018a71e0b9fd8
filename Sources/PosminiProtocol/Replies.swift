/// Every message the daemon sends, typed: the daemon builds them, `json` writes them, and
/// `Reply.parse` reads them back for clients, `posminictl`, diagnose and the tests. One case per
/// message class of docs/PROTOCOL.md.
///
/// Parsing is strict about what a message must hold (a missing or mistyped field names itself)
/// and tolerant of fields it does not know: a newer daemon (a higher `proto_minor`) may add some.
public enum Reply: Sendable, Hashable {
    /// The greeting's first line; `capabilities` is empty from a daemon before protocol 1.4.
    case version(release: String, major: Int, minor: Int, capabilities: [String] = [])
    /// The greeting's second line, and nothing else: every reader the daemon knows.
    case readers([ReaderInfo])
    /// To watchers: a reader appeared, went, started capturing, was bound…
    case reader(ReaderInfo)
    case watch(enable: Bool)
    case armed(reader: String, timeoutSeconds: Double, reference: String?)
    case released(reader: String, seconds: Double)
    case bound(reader: String)
    case unbound(reader: String)
    /// The simulated reader did what `simulate` asked (`card`: the swipe's card).
    case simulated(reader: String, action: String, card: String?)
    case status(StatusReport)
    /// The answer to `metrics`: the exposition in Prometheus's text format (docs/METRICS.md).
    case metrics(text: String)
    /// The arm's card, to the client that armed.
    case card(CardEvent)
    /// A bad read on an armed reader: to the client that armed (the arm stays).
    case swipeFailed(SwipeFailure)
    /// To watchers: a swipe on an armed reader, never its card.
    case swipe(SwipeActivity)
    /// To watchers: a swipe while nobody had armed the reader.
    case swipeIgnored(reader: String, read: Bool, decidedAt: Int?)
    /// An arm ended without a card: `CANCELLED` (with why: the client's cancel or the daemon
    /// stopping), `TIMEOUT`, `READER_REMOVED` (with the device's error when it failed),
    /// `SUPERSEDED` (the same client armed the reader again).
    case armEnded(ArmEnding, reader: String, reference: String?, message: String? = nil, reason: CancelReason? = nil)
    /// A refused request (no reader), or an arm that ended because its card could not be
    /// delivered (with the reader and the arm's reference).
    case error(ProtocolError, reader: String?, reference: String?)

    /// A refused request.
    public static func error(_ error: ProtocolError) -> Reply { .error(error, reader: nil, reference: nil) }

    /// The message classes of docs/PROTOCOL.md (the raw value is the `class`).
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case version = "VERSION", readers = "READERS", reader = "READER", watch = "WATCH", armed = "ARMED"
        case released = "RELEASED", bound = "BOUND", unbound = "UNBOUND", simulated = "SIMULATED", status = "STATUS", metrics = "METRICS", card = "CARD"
        case swipeFailed = "SWIPE_FAILED", swipe = "SWIPE", swipeIgnored = "SWIPE_IGNORED"
        case cancelled = "CANCELLED", timeout = "TIMEOUT", readerRemoved = "READER_REMOVED", superseded = "SUPERSEDED"
        case error = "ERROR"
    }

    public var kind: Kind {
        switch self {
        case .version: .version
        case .readers: .readers
        case .reader: .reader
        case .watch: .watch
        case .armed: .armed
        case .released: .released
        case .bound: .bound
        case .unbound: .unbound
        case .simulated: .simulated
        case .status: .status
        case .metrics: .metrics
        case .card: .card
        case .swipeFailed: .swipeFailed
        case .swipe: .swipe
        case .swipeIgnored: .swipeIgnored
        case .armEnded(.cancelled, _, _, _, _): .cancelled
        case .armEnded(.timeout, _, _, _, _): .timeout
        case .armEnded(.readerRemoved, _, _, _, _): .readerRemoved
        case .armEnded(.superseded, _, _, _, _): .superseded
        case .error: .error
        }
    }

    /// The `class` of the message.
    public var messageClass: String { kind.rawValue }
}

/// How an arm ended without a card (the message's `class`).
public enum ArmEnding: String, Sendable, Hashable, CaseIterable {
    case cancelled = "CANCELLED"
    case timeout = "TIMEOUT"
    case readerRemoved = "READER_REMOVED"
    /// The client that armed the reader armed it again: the earlier arm ends, the new one begins.
    case superseded = "SUPERSEDED"
}

/// Why an arm was cancelled (`CANCELLED`'s `reason`).
public enum CancelReason: String, Sendable, Hashable, CaseIterable {
    /// The client sent `cancel`.
    case client
    /// The daemon is stopping.
    case shutdown
}

/// A reader, as `READER`, `READERS` and `STATUS` describe it (docs/PROTOCOL.md, Readers).
public struct ReaderInfo: Sendable, Hashable {
    public var id: String
    public var name: String
    public var present = true
    public var jack = JackStatus.unknown
    /// Jack changes less than a second apart since start: a loose or worn jack.
    public var jackFlaps = 0
    public var capturing = false
    public var source = ReaderSource.config
    /// The ALSA device captured, the card id, and udev's `ID_PATH` and `ID_SERIAL`.
    public var device: String?
    public var card: String?
    public var udevPath: String?
    public var serial: String?
    /// Why capture is not running while the reader is present (it could not be opened).
    public var error: String?
    /// Bound to a user by `bind`; armed by some client. (Set by the hub as it describes the
    /// reader: the hub's own record keeps them false.)
    public var bound = false
    public var armed = false

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

/// The figures of `STATUS`.
public struct StatusReport: Sendable, Hashable {
    public var readers: [ReaderInfo] = []
    public var armed = 0
    public var clients = 0
    public var counters = Counters()
    public var uptimeSeconds = 0.0
    /// Nil when the daemon encrypts nothing (no key file).
    public var encryption: EncryptionStatus?
    public var process = ProcessReport()

    public init() {}

    /// Counts since start.
    public struct Counters: Sendable, Hashable {
        public var swipes = 0
        public var goodReads = 0
        /// By reason (`tooFast`, `noisy`…).
        public var failedReads: [String: Int] = [:]
        public var xruns = 0
        public var droppedSamples = 0
        public var audioGaps = 0
        public var eventsDropped = 0
        public var noiseBursts = 0
        public var jackFlaps = 0
        public init() {}
    }

    /// The key in use: never the key.
    public struct EncryptionStatus: Sendable, Hashable {
        public var scheme: String
        public var keyID: String
        public var exhausted: Bool
        public var testKey: Bool
        public var nextCounter: Int?
        public init(scheme: String, keyID: String, exhausted: Bool, testKey: Bool, nextCounter: Int?) {
            self.scheme = scheme
            self.keyID = keyID
            self.exhausted = exhausted
            self.testKey = testKey
            self.nextCounter = nextCounter
        }
    }

    /// The daemon process.
    public struct ProcessReport: Sendable, Hashable {
        public var residentKiB = 0
        public var heapBytes = 0
        public var descriptors = 0
        public var threads = 0
        public init(residentKiB: Int = 0, heapBytes: Int = 0, descriptors: Int = 0, threads: Int = 0) {
            self.residentKiB = residentKiB
            self.heapBytes = heapBytes
            self.descriptors = descriptors
            self.threads = threads
        }
    }
}

/// How a swipe went, as a POS app sees it: no card data. The figures are kept as they are
/// written: to a tenth of a dB and of a cm/s.
public struct SwipeSummary: Sendable, Hashable {
    public private(set) var snrDB: Double
    /// `forward` or `backward`; nil when nothing read.
    public var direction: String?
    public private(set) var speedCmPerSecond: Double?

    public init(snrDB: Double, direction: String? = nil, speedCmPerSecond: Double? = nil) {
        self.snrDB = Self.tenth(snrDB)
        self.direction = direction
        self.speedCmPerSecond = speedCmPerSecond.map(Self.tenth)
    }

    static func tenth(_ x: Double) -> Double { (x * 10).rounded() / 10 }
}

/// One track of a CARD: its status, and its masked text when it read.
public struct TrackSummary: Sendable, Hashable {
    /// 1, 2 or 3; nil when no format was recognised.
    public var track: Int?
    /// `ok`, or why not (`parity`, `lrc`, …).
    public var status: String
    public var corrected: Int
    public var masked: String?
    /// The clear text, start sentinel through end sentinel: only on a `nonPayment` card's tracks
    /// that read, and only from a daemon configured with `clear_non_payment = true`.
    public var text: String?

    public init(track: Int?, status: String, corrected: Int = 0, masked: String? = nil, text: String? = nil) {
        self.track = track
        self.status = status
        self.corrected = corrected
        self.masked = masked
        self.text = text
    }
}

/// A payment card's service code, read as ISO/IEC 7813 defines its three digits (CARD's
/// `service`): what a POS needs to decide chip fallback, online authorisation and PIN.
public struct ServiceSummary: Sendable, Hashable {
    /// First digit 2 or 6: the card has a chip, to be read where the terminal can.
    public var chip: Bool
    /// First digit: `international` (1, 2), `national` (5, 6), `bilateral` (7), `test` (9).
    public var interchange: String
    /// Second digit: `normal` (0), `online` (2: by the issuer, online), `online_unless_agreed` (4).
    public var authorization: String
    /// Third digit: `any` (0, 1, 6), `goods_and_services` (2, 5, 7), `atm` (3), `cash` (4).
    public var services: String
    /// Third digit 0, 3 or 5.
    public var pinRequired: Bool
    /// Third digit 6 or 7: ask for a PIN where the terminal can.
    public var pinWherePossible: Bool

    public init(chip: Bool, interchange: String, authorization: String, services: String, pinRequired: Bool, pinWherePossible: Bool) {
        self.chip = chip
        self.interchange = interchange
        self.authorization = authorization
        self.services = services
        self.pinRequired = pinRequired
        self.pinWherePossible = pinWherePossible
    }
}

/// `CARD`: the masked card, to the client that armed. The clear card goes only inside
/// `encrypted` (a DUKPT cryptogram, read by `posminictl decrypt`).
public struct CardEvent: Sendable, Hashable {
    public enum CardType: String, Sendable, Hashable, CaseIterable {
        case payment, nonPayment
    }

    public var reader: String
    public var reference: String?
    public var cardType: CardType
    /// Payment cards only.
    public var maskedPAN: String?
    public var last4: String?
    public var expiry: String?
    public var serviceCode: String?
    /// The service code's digits, interpreted.
    public var service: ServiceSummary?
    /// The issuer identification number: the first 8 digits of a PAN of 16 or more, else the
    /// first 6, whatever the display mask.
    public var iin: String?
    /// Track 1's cardholder name as encoded on the card (`SURNAME/GIVEN`).
    public var name: String?
    public var tracks: [TrackSummary]
    public var quality: SwipeSummary
    /// The cryptogram (`scheme`, `ksn`, `tracks`, `mac`) when the daemon has a key.
    public var encrypted: JSONValue?
    /// With `encrypted`: whether it is under a published test key (never for real cards).
    public var testKey: Bool?

    public init(reader: String, reference: String? = nil, cardType: CardType, tracks: [TrackSummary], quality: SwipeSummary) {
        self.reader = reader
        self.reference = reference
        self.cardType = cardType
        self.tracks = tracks
        self.quality = quality
    }
}

/// `SWIPE_FAILED`: a bad read, with what a person can do about it.
public struct SwipeFailure: Sendable, Hashable {
    public var reader: String
    public var reference: String?
    /// `tooFast`, `tooSlow`, `unevenSpeed`, `partialSwipe`, `weakSignal`, `clipped`, `noisy`,
    /// `notAMagstripe`, `unreadable`.
    public var reason: String
    public var quality: SwipeSummary

    public init(reader: String, reference: String? = nil, reason: String, quality: SwipeSummary) {
        self.reader = reader
        self.reference = reference
        self.reason = reason
        self.quality = quality
    }
}

/// `SWIPE`, to watchers: a swipe on an armed reader.
public struct SwipeActivity: Sendable, Hashable {
    public var reader: String
    public var read: Bool
    /// When it read: whether the card reached the client that armed (false: it could not be
    /// encrypted).
    public var delivered: Bool?
    /// When it did not read: why.
    public var reason: String?
    /// The stream position (samples) at which the decoder decided it: only under the daemon's
    /// test seam (`--expose-decided-at`).
    public var decidedAt: Int?

    public init(reader: String, read: Bool, delivered: Bool? = nil, reason: String? = nil, decidedAt: Int? = nil) {
        self.reader = reader
        self.read = read
        self.delivered = delivered
        self.reason = reason
        self.decidedAt = decidedAt
    }
}
