import ReaderIO
import ReaderPipeline

/// Where a reader comes from, which decides when it is wanted.
enum ReaderKind: Sendable, Hashable {
    /// A configured device that is not a card (`pulse`, a plugin): always wanted.
    case plainDevice
    /// A card marked as a reader by the udev rules: wanted while plugged in.
    case markedCard
    /// A configured card (`hw:CARD=PCH`): wanted while present and its jack is not out.
    case configuredCard
    /// A recording played back: opened once, never reopened.
    case replay
}

/// What a reader is doing. Only the registry's transitions change it.
enum ReaderLifecycle: Sendable, Hashable {
    /// A configured card that is not there (not found yet, or removed).
    case waitingForCard
    /// A configured card that is there and not captured: its jack is followed.
    case watchingJack
    /// Nothing open and nothing pending: a recording that ended, a reader unplugged, a device
    /// not opened yet.
    case stopped
    /// A session runs; `token` tells it from the sessions before it.
    case capturing(token: Int)
    /// Capture failed while the reader was wanted; it is tried again when `token` comes due.
    case retrying(token: Int)
    /// `posminid --diagnose` holds the device; it is reopened when `token` comes due.
    case released(token: Int)
}

/// One reader's slot: what it is, what it is doing, and what has been said of it.
struct ReaderSlot<Session> {
    let id: String
    var kind: ReaderKind
    var lifecycle: ReaderLifecycle
    /// The capture device (what a release or a retry reopens); nil for a recording.
    var device: String?
    /// The sound card, while it is there (marked and configured cards).
    var card: SoundCard?
    /// The running session, exactly while `capturing`.
    fileprivate(set) var session: Session?
    /// Failures since capture last ran (the back-off's exponent).
    var failedAttempts = 0
    /// The last failure logged (a repeat goes to the debug level).
    var lastFailure: String?
    /// The flap count last logged (configured cards).
    var jackFlaps = 0
    /// Counters of the sessions that have ended.
    var past: ReaderStatistics?
}

/// Every reader the daemon knows, one slot each, keyed by reader id. A slot's lifecycle moves
/// only through the transitions below, and the tokens that tell one session, retry or release
/// from the next are issued here alone. Each transition returns what the caller must act on (a
/// session to stop, a token to wait for); it touches no device and no clock, so it is tested on
/// its own (`ReaderRegistryTests`).
struct ReaderRegistry<Session> {
    private var slots: [String: ReaderSlot<Session>] = [:]
    private var lastToken = 0

    /// The one place a token is made.
    private mutating func issueToken() -> Int {
        lastToken += 1
        return lastToken
    }

    // MARK: Looking

    func lifecycle(_ id: String) -> ReaderLifecycle? { slots[id]?.lifecycle }
    func kind(_ id: String) -> ReaderKind? { slots[id]?.kind }
    func device(_ id: String) -> String? { slots[id]?.device }
    func card(_ id: String) -> SoundCard? { slots[id]?.card }
    func session(_ id: String) -> Session? { slots[id]?.session }
    func past(_ id: String) -> ReaderStatistics? { slots[id]?.past }
    func jackFlaps(_ id: String) -> Int { slots[id]?.jackFlaps ?? 0 }
    var ids: [String] { Array(slots.keys) }
    var sessions: [(id: String, session: Session)] {
        slots.values.compactMap { slot in slot.session.map { (slot.id, $0) } }
    }
    func isReleased(_ id: String) -> Bool {
        if case .released = slots[id]?.lifecycle { return true }
        return false
    }

    /// The reader whose card is at `syspath`.
    func reader(atSyspath syspath: String) -> String? {
        slots.values.first { $0.card?.syspath == syspath }?.id
    }

    // MARK: Transitions

    /// A reader becomes known (again: its slot and its past are kept).
    mutating func register(_ id: String, kind: ReaderKind, device: String? = nil) {
        if slots[id] == nil {
            slots[id] = ReaderSlot(id: id, kind: kind, lifecycle: kind == .configuredCard ? .waitingForCard : .stopped,
                                   device: device, card: nil, session: nil)
        } else {
            slots[id]!.kind = kind
            if let device { slots[id]!.device = device }
        }
    }

    /// Its card is there: a configured card's jack is watched from now on.
    mutating func cardFound(_ id: String, card: SoundCard) {
        guard slots[id] != nil else { return }
        slots[id]!.card = card
        if slots[id]!.lifecycle == .waitingForCard { slots[id]!.lifecycle = .watchingJack }
    }

    /// Its card is gone: the session to stop, if one ran.
    mutating func cardLost(_ id: String) -> Session? {
        guard slots[id] != nil else { return nil }
        slots[id]!.card = nil
        return stop(id)
    }

    /// The device capture opens (set each time: a configured card resolves to its number).
    mutating func useDevice(_ id: String, _ device: String) {
        slots[id]?.device = device
    }

    /// A session starts: its token.
    mutating func began(_ id: String, session: Session) -> Int {
        let token = issueToken()
        slots[id]!.session = session
        slots[id]!.lifecycle = .capturing(token: token)
        return token
    }

    /// The session's capture runs: failures are over. Returns whether there were any.
    mutating func running(_ id: String) -> Bool {
        guard slots[id] != nil else { return false }
        slots[id]!.failedAttempts = 0
        return slots[id]!.lastFailure.take() != nil
    }

    /// Capture failed while wanted: the retry's token, how many failures in a row, and whether
    /// this reason is new (to log at error level once).
    mutating func failed(_ id: String, reason: String) -> (token: Int, attempt: Int, newReason: Bool) {
        let token = issueToken()
        let newReason = slots[id]!.lastFailure != reason
        slots[id]!.lastFailure = reason
        slots[id]!.failedAttempts += 1
        slots[id]!.lifecycle = .retrying(token: token)
        return (token, slots[id]!.failedAttempts, newReason)
    }

    /// A retry comes due: true when it is still the one pending (the reader rests until the
    /// caller opens it again).
    mutating func retryDue(_ id: String, token: Int) -> Bool {
        guard slots[id]?.lifecycle == .retrying(token: token) else { return false }
        slots[id]!.lifecycle = resting(id)
        return true
    }

    /// The reader is no longer wanted: no back-off carries over to the next time it is.
    mutating func abandonRetries(_ id: String) {
        slots[id]?.failedAttempts = 0
    }

    /// `posminid --diagnose` takes the device: the release's token and the session to stop.
    mutating func release(_ id: String) -> (token: Int, session: Session?) {
        let session = stop(id)
        let token = issueToken()
        slots[id]!.lifecycle = .released(token: token)
        return (token, session)
    }

    /// A release comes due: true when it is still the one pending (the reader rests until the
    /// caller opens it again).
    mutating func reopenDue(_ id: String, token: Int) -> Bool {
        guard slots[id]?.lifecycle == .released(token: token) else { return false }
        slots[id]!.lifecycle = resting(id)
        return true
    }

    /// A session ended on its own: it, when it is still the current one.
    mutating func ended(_ id: String, token: Int) -> Session? {
        guard slots[id]?.lifecycle == .capturing(token: token) else { return nil }
        return stop(id)
    }

    /// Capture stops (removal, an unplugged jack): the session to stop, if one ran.
    mutating func stop(_ id: String) -> Session? {
        guard slots[id] != nil, case .capturing = slots[id]!.lifecycle else { return nil }
        let session = slots[id]!.session.take()
        slots[id]!.lifecycle = resting(id)
        return session
    }

    /// A session's counters join the reader's past.
    mutating func retire(_ id: String, statistics: ReaderStatistics) {
        guard slots[id] != nil else { return }
        let past = slots[id]!.past
        slots[id]!.past = ReaderStatistics.sum(past, statistics)
    }

    mutating func setJackFlaps(_ id: String, _ flaps: Int) {
        slots[id]?.jackFlaps = flaps
    }

    /// Every session, for shutting down; every slot rests.
    mutating func stopAll() -> [Session] {
        ids.compactMap { stop($0) }
    }

    /// Where a reader rests when nothing runs or is pending for it.
    private func resting(_ id: String) -> ReaderLifecycle {
        guard let slot = slots[id], slot.kind == .configuredCard else { return .stopped }
        return slot.card == nil ? .waitingForCard : .watchingJack
    }
}

extension ReaderStatistics {
    /// Two sets of counters added up (the first may be missing).
    static func sum(_ a: ReaderStatistics?, _ b: ReaderStatistics) -> ReaderStatistics {
        guard let a else { return b }
        var sum = ReaderStatistics(framesCaptured: a.framesCaptured + b.framesCaptured, overruns: a.overruns + b.overruns,
                                   dropped: a.dropped + b.dropped, gaps: a.gaps + b.gaps, swipes: a.swipes + b.swipes)
        sum.eventsDropped = a.eventsDropped + b.eventsDropped
        return sum
    }
}
