public import PosminiProtocol
import PosminiMetrics
import Magstripe
public import SwipeDecoder
import ReaderIO
import ReaderPipeline
import Dispatch

/// Who is at the other end of a connection, as the kernel told the server at connect time.
public struct ClientPeer: Sendable, Hashable {
    public var uid: UInt32
    /// Root, or a member of the configured `admin_group`: may `release` readers and `bind`,
    /// `unbind` and `arm` readers bound to anyone.
    public var admin: Bool

    public init(uid: UInt32, admin: Bool) {
        self.uid = uid
        self.admin = admin
    }
}

/// Who a binding belongs to: the POS user who bound the reader, or the admins (a binding from a
/// 0.5.0 file, which had no owners).
public enum BindingOwner: Sendable, Hashable {
    case user(UInt32)
    case admins
}

/// A connected client as the hub sees it: who it is and where its messages go.
public protocol HubClient: AnyObject, Sendable {
    var clientID: Int { get }
    var peer: ClientPeer { get }
    /// Queues a message for the client; never blocks (a client that does not read is closed
    /// by its connection, not waited on).
    func send(_ message: Reply)
}

/// The daemon's state: readers, who has armed which, who watches; routes every swipe. An actor:
/// requests from the socket, swipes from the decoder threads and timers all pass through it in
/// turn.
public actor ReaderHub {
    struct Arm {
        var client: Int
        var reference: String?
        /// When it times out (monotonic seconds).
        var deadline: Double
    }

    private var readers: [String: ReaderInfo] = [:]
    private var readerOrder: [String] = []
    private var arms: [String: Arm] = [:] {
        // Whatever ended or began an arm (card, cancel, removal, disconnect…), the timer is set
        // for the earliest deadline left, and the observer hears which readers changed.
        didSet {
            scheduleExpiry()
            if let armObserver {
                for reader in Set(oldValue.keys).symmetricDifference(arms.keys) { armObserver(reader, arms[reader] != nil) }
            }
        }
    }
    /// One timer for every arm's timeout, set for the earliest deadline. Not a sleeping task per
    /// arm: a cancelled `Task.sleep` keeps its memory until its deadline passes, so a client
    /// arming and cancelling in a loop with long timeouts held about 800 bytes per arm for up to
    /// two minutes, without bound.
    private var expiryTimer: DeadlineTimer?
    /// The deadline the timer is set for (nil: none).
    private var scheduledExpiry: Double?
    private var clients: [Int: any HubClient] = [:]
    /// Each client's readers whose last arm ended with a CARD, and that arm's reference: a
    /// `cancel` that comes after the card answers `too_late` with it (once), until the client
    /// arms the reader again.
    private var deliveredCards: [Int: [String: String?]] = [:]
    private var watchers: Set<Int> = []
    private var bindings: [String: BindingOwner]
    private let bindingsPath: String?
    /// Bindings read from a file without owners (0.5.0's): now the admins'. The daemon logs it.
    public nonisolated let ownerlessBindings: Int
    /// Readers released for diagnose, and the connection that asked: the release ends with it.
    private var releasedBy: [String: Int] = [:]
    private var shuttingDown = false
    private let started = monotonicSeconds()
    private var maximumArm: Double
    private let encryptor: CardEncryptor?
    /// The daemon's test seam (`--expose-decided-at`): watchers see where each swipe was decided.
    private let exposeDecidedAt: Bool
    /// `clear_non_payment`: a card without a payment track reaches the arming client in clear.
    private var clearNonPayment: Bool

    /// Each reader's counts (issue 25), kept for as long as the daemon runs: STATUS's
    /// daemon-wide swipes, reads, failures and noise bursts are their sums. The daemon's own
    /// counts; each reader's sample rate, for its results' latency in audio time.
    private var readerMetrics: [String: ReaderMetrics] = [:]
    private var daemonMetrics = DaemonMetrics()
    private var sampleRates: [String: Int] = [:]
    /// Each reader's capture counters since start, as the reader manager last reported them.
    private var capture: [String: ReaderStatistics] = [:]

    /// `bindingsPath`: where `bind` persists (nil: in memory only). `encryptor` builds the
    /// `encrypted` object of a CARD (nil, in hub tests only: the field is left out).
    public init(maximumArm: Double = PosminiProtocol.maximumArm, bindingsPath: String? = nil,
                encryptor: CardEncryptor? = nil, exposeDecidedAt: Bool = false, clearNonPayment: Bool = false) {
        self.maximumArm = maximumArm
        self.clearNonPayment = clearNonPayment
        self.exposeDecidedAt = exposeDecidedAt
        self.bindingsPath = bindingsPath
        self.encryptor = encryptor
        var loaded: [String: BindingOwner] = [:]
        var ownerless = 0
        if let bindingsPath, let bytes = try? FileBytes.read(bindingsPath, limit: 1 << 20, followingLinks: false) {
            (loaded, ownerless) = Self.parseBindings(String(decoding: bytes, as: UTF8.self))
        }
        bindings = loaded
        ownerlessBindings = ownerless
        // Written back with owners at once, so the upgrade is logged once, not at every start.
        if ownerless > 0, let bindingsPath { Self.save(loaded, to: bindingsPath) }
    }

    /// The bindings file: a line per reader, `ID<TAB>UID` or `ID<TAB>admin`. A line without a
    /// tab is 0.5.0's (no owner): the admins' binding. Reader ids hold no tab or newline (udev
    /// serials and paths, ALSA names), so the last tab splits a line.
    static func parseBindings(_ text: String) -> (bindings: [String: BindingOwner], ownerless: Int) {
        var bindings: [String: BindingOwner] = [:]
        var ownerless = 0
        for line in text.split(separator: "\n") where !line.isEmpty && !line.hasPrefix("#") {
            guard let tab = line.lastIndex(of: "\t") else {
                bindings[String(line)] = .admins
                ownerless += 1
                continue
            }
            let reader = String(line[..<tab]), owner = line[line.index(after: tab)...]
            guard !reader.isEmpty else { continue }
            if owner == "admin" {
                bindings[reader] = .admins
            } else if let uid = UInt32(owner) {
                bindings[reader] = .user(uid)
            } else {
                // An owner that cannot be read is nobody's to claim: only admins may change it.
                bindings[reader] = .admins
            }
        }
        return (bindings, ownerless)
    }

    static func bindingsText(_ bindings: [String: BindingOwner]) -> String {
        "# posminid reader bindings: reader id, tab, owner uid (or admin)\n" + bindings.keys.sorted().map { reader in
            switch bindings[reader]! {
            case .user(let uid): "\(reader)\t\(uid)\n"
            case .admins: "\(reader)\tadmin\n"
            }
        }.joined()
    }

    /// The longest arm from now on (a reloaded configuration).
    public func setMaximumArm(_ seconds: Double) { maximumArm = seconds }

    /// Whether non-payment cards go in clear from now on (a reloaded configuration).
    public func setClearNonPayment(_ on: Bool) { clearNonPayment = on }

    // MARK: Clients

    /// Registers a client; returns its greeting (VERSION, READERS). While the daemon stops, the
    /// client is not registered and the greeting is one `ERROR shutting_down`: the connection
    /// is to be closed after it.
    public func connect(_ client: any HubClient) -> [Reply] {
        guard !shuttingDown else { return [.error(Self.stopping)] }
        clients[client.clientID] = client
        return [
            .version(release: PosminiProtocol.release, major: PosminiProtocol.major, minor: PosminiProtocol.minor,
                     capabilities: PosminiProtocol.capabilities),
            .readers(readerOrder.compactMap { readers[$0].map(described) }),
        ]
    }

    static let stopping = ProtocolError("shutting_down", "posminid is stopping: connect again once it is back")

    /// A client went away: its arms end (nobody is told: it is gone), and so do the releases
    /// it asked for (the readers are taken back at once).
    public func disconnect(_ id: Int) async {
        clients[id] = nil
        deliveredCards[id] = nil
        watchers.remove(id)
        for (reader, arm) in arms where arm.client == id { arms[reader] = nil }
        let released = releasedBy.filter { $0.value == id }.keys.sorted()
        for reader in released {
            releasedBy[reader] = nil
            _ = await releaser?(reader, 0)
        }
    }

    /// `owner`'s binding lets `peer` use or change the reader.
    private func permits(_ owner: BindingOwner?, _ peer: ClientPeer) -> Bool {
        guard let owner else { return true }
        if peer.admin { return true }
        return owner == .user(peer.uid)
    }

    private func notPermitted(_ message: String) -> [Reply] { [.error(ProtocolError("not_permitted", message))] }

    public var clientCount: Int { clients.count }

    /// Answers one request of client `id`.
    /// Lets go of a reader's device for some seconds, then opens it again (0: now); returns why
    /// it cannot. Set by the daemon (nil in hub tests: release is refused).
    public typealias Releaser = @Sendable (_ reader: String, _ seconds: Double) async -> String?
    private var releaser: Releaser?

    public func setReleaser(_ releaser: @escaping Releaser) { self.releaser = releaser }

    /// Told whenever a reader becomes armed or stops being armed, however the arm ended (the
    /// daemon's replay seams start and hold their recordings on it).
    public typealias ArmObserver = @Sendable (_ reader: String, _ armed: Bool) -> Void
    private var armObserver: ArmObserver?
    public func setArmObserver(_ observer: @escaping ArmObserver) { armObserver = observer }

    /// Carries out `simulate` on the simulated reader; returns why it cannot (or the card it
    /// swiped, as `.success`). Set by a daemon started with `--test-key --simulate` only: any
    /// other refuses `simulate` with `not_permitted`.
    public typealias Simulate = @Sendable (SimulateAction) async -> Result<String?, ProtocolError>
    private var simulate: Simulate?
    public func setSimulator(_ simulate: @escaping Simulate) { self.simulate = simulate }

    /// Every request is decided before anything changes: a refused request changes nothing.
    /// Refusals are counted by code for the metrics.
    public func handle(_ request: Request, from id: Int) async -> [Reply] {
        let replies = await decide(request, from: id)
        for case .error(let error, _, _) in replies { daemonMetrics.protocolErrors[error.code, default: 0] += 1 }
        return replies
    }

    /// A request the server could not parse, refused there: counted with the hub's refusals.
    public func countRefusal(_ code: String) {
        daemonMetrics.protocolErrors[code, default: 0] += 1
    }

    private func decide(_ request: Request, from id: Int) async -> [Reply] {
        guard let peer = clients[id]?.peer else { return [.error(ProtocolError("not_connected", "this client is not connected"))] }
        switch request {
        case .watch(let enable):
            if enable { watchers.insert(id) } else { watchers.remove(id) }
            return [.watch(enable: enable)]
        case .arm(let requested, let timeout, let reference):
            guard !shuttingDown else { return [.error(Self.stopping)] }
            let reader: String
            if let requested {
                guard let info = readers[requested], info.present else {
                    return [.error(ProtocolError("unknown_reader", "no reader \"\(requested)\" is present"))]
                }
                reader = info.id
            } else {
                let present = readerOrder.filter { readers[$0]?.present == true }
                guard !present.isEmpty else { return [.error(ProtocolError("no_reader", "no reader is present"))] }
                guard present.count == 1 else {
                    return [.error(ProtocolError("ambiguous_reader", "\(present.count) readers are present: name one with \"reader\" (\(present.joined(separator: ", ")))"))]
                }
                reader = present[0]
            }
            guard permits(bindings[reader], peer) else {
                return notPermitted("reader \"\(reader)\" is bound to another user: only its owner or an admin may arm it")
            }
            if let error = readers[reader]?.error {
                return [.error(ProtocolError("reader_unavailable", "reader \"\(reader)\" is not capturing: \(error)"))]
            }
            if let encryptor, encryptor.isExhausted {
                return [.error(ProtocolError("key_exhausted", "the reader's encryption key is used up: provision a new key"))]
            }
            if let current = arms[reader], current.client != id {
                return [.error(ProtocolError("reader_busy", "reader \"\(reader)\" is armed by another client"))]
            }
            let seconds = min(timeout ?? maximumArm, maximumArm)
            // Arming again ends the earlier arm first: every arm has exactly one ending.
            if let earlier = arms[reader] {
                clients[id]?.send(.armEnded(.superseded, reader: reader, reference: earlier.reference,
                                            message: "armed again" + (reference.map { " (reference \($0))" } ?? "")))
            }
            deliveredCards[id]?[reader] = nil
            arms[reader] = Arm(client: id, reference: reference, deadline: monotonicSeconds() + seconds)
            return [.armed(reader: reader, timeoutSeconds: seconds, reference: reference)]
        case .cancel(let only):
            // The client's arms end (on `only`, or all); a reader whose arm ended with a card
            // the client may not have seen yet answers too_late, naming that arm's reference.
            let ending = arms.filter { $0.value.client == id && (only == nil || $0.key == only) }.keys.sorted()
            let late = (deliveredCards[id] ?? [:]).filter { only == nil || $0.key == only }.sorted { $0.key < $1.key }
            guard !ending.isEmpty || !late.isEmpty else {
                return [.error(ProtocolError("not_armed", only.map { "this client has not armed reader \"\($0)\"" } ?? "this client has no reader armed"))]
            }
            var replies = ending.map { reader in
                let arm = arms.removeValue(forKey: reader)!
                return Reply.armEnded(.cancelled, reader: reader, reference: arm.reference, reason: .client)
            }
            for (reader, reference) in late {
                deliveredCards[id]?[reader] = nil
                let which = reference.map { "(reference \($0)) " } ?? ""
                replies.append(.error(ProtocolError("too_late", "the arm on \"\(reader)\" \(which)already ended with a card: void or reverse that sale if it is cancelled"),
                                      reader: reader, reference: reference))
            }
            return replies
        case .status:
            return [.status(status())]
        case .metrics:
            return [.metrics(text: metricsText())]
        case .release(let reader, let seconds):
            guard peer.admin else {
                return notPermitted("release is for admins (root or the admin group): run posminid --diagnose with sudo")
            }
            guard let info = readers[reader], info.present else {
                return [.error(ProtocolError("unknown_reader", "no reader \"\(reader)\" is present"))]
            }
            guard let releaser else { return [.error(ProtocolError("not_releasable", "this daemon cannot release readers"))] }
            // The device is let go first: a reader that cannot be released keeps its arm.
            if let failure = await releaser(reader, seconds) {
                return [.error(ProtocolError("not_releasable", "reader \"\(reader)\": \(failure)"))]
            }
            // The hub ran other requests during the await: the arm ended now is whichever is on
            // the reader now, and the client that asked may have gone.
            guard clients[id] != nil else {
                if seconds > 0 { _ = await releaser(reader, 0) }
                return []
            }
            if seconds > 0 {
                releasedBy[reader] = id
                if let arm = arms.removeValue(forKey: reader) {
                    clients[arm.client]?.send(.armEnded(.readerRemoved, reader: reader, reference: arm.reference,
                                                        message: "released for posminid --diagnose"))
                }
                if var current = readers[reader] {
                    current.capturing = false
                    current.error = "released for posminid --diagnose for \(Int(seconds)) s"
                    update(current)
                }
            } else {
                releasedBy[reader] = nil
            }
            return [.released(reader: reader, seconds: seconds)]
        case .bind(let reader):
            guard readers[reader] != nil || bindings[reader] != nil else {
                return [.error(ProtocolError("unknown_reader", "no reader \"\(reader)\""))]
            }
            guard permits(bindings[reader], peer) else {
                return notPermitted("reader \"\(reader)\" is bound to another user: its owner or an admin must unbind it first")
            }
            // Binding a reader in another user's sale would lock that sale's next arm out.
            if let arm = arms[reader], let holder = clients[arm.client]?.peer, holder.uid != peer.uid, !peer.admin {
                return [.error(ProtocolError("reader_busy", "reader \"\(reader)\" is armed by another user"))]
            }
            bindings[reader] = .user(peer.uid)
            saveBindings()
            if let info = readers[reader] { broadcast(.reader(described(info))) }
            return [.bound(reader: reader)]
        case .simulate(let action):
            guard let simulate else {
                return notPermitted("simulate is for a daemon started with --test-key --simulate (the test mode for integrators)")
            }
            switch await simulate(action) {
            case .success(let card): return [.simulated(reader: Simulator.readerID, action: action.name, card: card)]
            case .failure(let error): return [.error(error)]
            }
        case .unbind(let reader):
            guard readers[reader] != nil || bindings[reader] != nil else {
                return [.error(ProtocolError("unknown_reader", "no reader \"\(reader)\""))]
            }
            guard permits(bindings[reader], peer) else {
                return notPermitted("reader \"\(reader)\" is bound to another user: only its owner or an admin may unbind it")
            }
            if bindings.removeValue(forKey: reader) != nil {
                saveBindings()
                if let info = readers[reader] { broadcast(.reader(described(info))) }
            }
            return [.unbound(reader: reader)]
        }
    }

    /// Sets the timer for the earliest deadline of the arms (or for never).
    private func scheduleExpiry() {
        let next = arms.values.map(\.deadline).min()
        guard next != scheduledExpiry else { return }
        scheduledExpiry = next
        if expiryTimer == nil, next != nil {
            expiryTimer = DeadlineTimer { [weak self] in
                Task { await self?.expireDue() }
            }
        }
        expiryTimer?.set(next.map { $0 - monotonicSeconds() })
    }

    /// The timer fired: every arm whose deadline has passed ends with TIMEOUT.
    private func expireDue() {
        scheduledExpiry = nil
        let now = monotonicSeconds()
        for (reader, arm) in arms.sorted(by: { $0.key < $1.key }) where arm.deadline <= now {
            arms[reader] = nil
            clients[arm.client]?.send(.armEnded(.timeout, reader: reader, reference: arm.reference, message: nil))
            daemonMetrics.armTimeouts += 1
        }
        scheduleExpiry()
    }

    // MARK: Readers

    /// A reader is there (or, with `present` false, known but not attached: a configured card
    /// not plugged yet). `details` gives its name, source and identity; state it already has
    /// (jack, flaps, capture) is kept.
    public func readerAppeared(_ details: ReaderInfo, present: Bool = true) {
        var info = readers[details.id] ?? details
        info.name = details.name
        info.source = details.source
        info.device = details.device
        info.card = details.card
        info.udevPath = details.udevPath
        info.serial = details.serial
        if details.jack != .unknown { info.jack = details.jack }
        info.present = present
        if readers[details.id] == nil { readerOrder.append(details.id) }
        update(info)
    }

    public func reader(_ id: String) -> ReaderInfo? { readers[id] }

    func readerAppeared(id: String, name: String) {
        readerAppeared(ReaderInfo(id: id, name: name))
    }

    public func readerCapturing(id: String, _ capturing: Bool) {
        guard var info = readers[id] else { return }
        info.capturing = capturing
        if capturing {
            info.error = nil
            // Taken back (the release's seconds passed): nothing left to end at disconnect.
            releasedBy[id] = nil
        }
        update(info)
    }

    /// Capture could not start or stopped with an error while the reader stays attached.
    public func readerFailed(id: String, error: String) {
        guard var info = readers[id] else { return }
        info.capturing = false
        info.error = error
        if let arm = arms.removeValue(forKey: id) {
            clients[arm.client]?.send(.armEnded(.readerRemoved, reader: id, reference: arm.reference, message: error))
        }
        update(info)
    }

    /// A configured card's jack: its state and flap count.
    public func readerJack(id: String, jack: JackStatus, flaps: Int) {
        guard var info = readers[id] else { return }
        // The watch's count starts again when the watch does (the card went and came back);
        // READER, STATUS and the metrics all give the count since start.
        readerMetrics[id, default: ReaderMetrics()].jackCount(flaps)
        info.jack = jack
        info.jackFlaps = readerMetrics[id]?.jackFlaps ?? flaps
        update(info)
    }

    /// The reader is gone: an arm on it ends with READER_REMOVED.
    public func readerRemoved(id: String, error: String? = nil) {
        guard var info = readers[id] else { return }
        info.present = false
        info.capturing = false
        if let error { info.error = error }
        if let arm = arms.removeValue(forKey: id) {
            clients[arm.client]?.send(.armEnded(.readerRemoved, reader: id, reference: arm.reference, message: error))
        }
        update(info)
    }

    /// Stores `info` and tells watchers when anything they see changed.
    private func update(_ info: ReaderInfo) {
        let changed = readers[info.id] != info
        readers[info.id] = info
        if changed { broadcast(.reader(described(info))) }
    }

    /// A reader's capture counters since start (overruns, samples dropped, gaps in its audio).
    func readerStatistics(id: String, _ statistics: ReaderStatistics) {
        capture[id] = statistics
    }

    /// Takes one reader's events, in order, until its session ends. Each wait for the next
    /// event lets go of the hub, and the event is handled in a turn of its own behind whatever
    /// came meanwhile: a client's request waits behind one event at most, never a backlog.
    func take(_ events: EventQueue<ReaderEvent>, reader id: String,
              started: @Sendable (_ rate: Int, _ channels: Int, _ periodFrames: Int) async -> Void,
              ended: @Sendable (CaptureEnd?) async -> Void) async {
        while let event = await events.next() {
            // To the back of the hub's line: a request that came meanwhile goes first. (Taking
            // a ready event does not suspend, so without this a backlog would hold the hub.)
            await Task.yield()
            switch event {
            case .started(let rate, let channels, let period):
                sampleRates[id] = rate
                readerCapturing(id: id, true)
                await started(rate, channels, period)
            case .swipe(let swipe):
                self.swipe(swipe, reader: id)
            case .ended(let reason):
                // The last event: the queue (and its descriptor) goes when this returns.
                events.close()
                await ended(reason)
                return
            case .noiseBurst:
                readerMetrics[id, default: ReaderMetrics()].ignoredBursts += 1
            case .notice:
                break
            }
        }
    }

    /// A swipe ended on `reader`: the card to the client that armed it (and the arm ends), a
    /// failure to that client (the arm stays), activity without card data to watchers.
    public func swipe(_ swipe: Swipe, reader: String) {
        // Watchers see `decided_at` under the daemon's test seam only.
        let decidedAt = exposeDecidedAt ? swipe.decidedAt.map { Int($0) } : nil
        let ok = !swipe.readTracks.isEmpty
        readerMetrics[reader, default: ReaderMetrics()].record(swipe, sampleRate: sampleRates[reader], at: MetricsClock.now())
        guard let arm = arms[reader], let client = clients[arm.client] else {
            notifyWatchers(.swipeIgnored(reader: reader, read: ok, decidedAt: decidedAt), except: nil)
            return
        }
        if ok {
            var card = CardMessage.card(swipe, reader: reader, reference: arm.reference, clearNonPayment: clearNonPayment)
            arms[reader] = nil
            if let encryptor {
                switch encryptor.encrypt(swipe) {
                case .success(let encrypted):
                    card.encrypted = encrypted
                    card.testKey = encryptor.testKey
                case .failure(let failure):
                    // The card cannot leave: the arm ends with the reason.
                    client.send(.error(ProtocolError(failure.code, failure.message), reader: reader, reference: arm.reference))
                    notifyWatchers(.swipe(SwipeActivity(reader: reader, read: true, delivered: false, decidedAt: decidedAt)), except: arm.client)
                    return
                }
            }
            client.send(.card(card))
            daemonMetrics.cardsPublished += 1
            deliveredCards[arm.client, default: [:]][reader] = .some(arm.reference)
            notifyWatchers(.swipe(SwipeActivity(reader: reader, read: true, delivered: true, decidedAt: decidedAt)), except: arm.client)
        } else {
            let failure = CardMessage.failed(swipe, reader: reader, reference: arm.reference)
            client.send(.swipeFailed(failure))
            notifyWatchers(.swipe(SwipeActivity(reader: reader, read: false, reason: failure.reason, decidedAt: decidedAt)), except: arm.client)
        }
    }

    /// Shutting down: every armed client is told CANCELLED.
    public func shutdown() {
        shuttingDown = true
        for (reader, arm) in arms.sorted(by: { $0.key < $1.key }) {
            clients[arm.client]?.send(.armEnded(.cancelled, reader: reader, reference: arm.reference, reason: .shutdown))
        }
        arms.removeAll()
    }

    /// One line for systemd's STATUS=.
    public func summary() -> String {
        let present = readers.values.filter(\.present).count
        let read = readerMetrics.values.map(\.read).reduce(0, +), swipes = read + readerMetrics.values.map(\.failed).reduce(0, +)
        return "\(present) reader\(present == 1 ? "" : "s"), \(clients.count) client\(clients.count == 1 ? "" : "s"), \(arms.count) armed, \(swipes) swipes (\(read) read)"
    }

    // MARK: Messages

    /// The reader as clients see it: with its binding and arm.
    private func described(_ info: ReaderInfo) -> ReaderInfo {
        var info = info
        info.bound = bindings[info.id] != nil
        info.armed = arms[info.id] != nil
        return info
    }

    /// The metrics in Prometheus's text format (docs/METRICS.md).
    func metricsText() -> String {
        let report = status()
        var perReader: [String: (overruns: Int, dropped: Int, gaps: Int)] = [:]
        for (id, c) in capture { perReader[id] = (c.overruns, c.dropped, c.gaps) }
        return MetricsText.render(status: report, readers: readerMetrics, capture: perReader, daemon: daemonMetrics,
                                  transactionsLeft: encryptor?.transactionsLeft)
    }

    private func status() -> StatusReport {
        var report = StatusReport()
        report.readers = readerOrder.compactMap { readers[$0].map(described) }
        report.armed = arms.count
        report.clients = clients.count
        for m in readerMetrics.values {
            report.counters.swipes += m.read + m.failed
            report.counters.goodReads += m.read
            report.counters.failedReads.merge(m.failedByReason, uniquingKeysWith: +)
            report.counters.noiseBursts += m.ignoredBursts
        }
        report.counters.xruns = capture.values.map(\.overruns).reduce(0, +)
        report.counters.droppedSamples = capture.values.map(\.dropped).reduce(0, +)
        report.counters.audioGaps = capture.values.map(\.gaps).reduce(0, +)
        report.counters.eventsDropped = capture.values.map(\.eventsDropped).reduce(0, +)
        report.counters.jackFlaps = readerMetrics.values.map(\.jackFlaps).reduce(0, +)
        report.uptimeSeconds = (monotonicSeconds() - started).rounded()
        report.encryption = encryptor?.status()
        let process = ProcessFigures.current()
        report.process = .init(residentKiB: process.residentKiB, heapBytes: process.heapBytes,
                               descriptors: process.descriptors, threads: process.threads)
        return report
    }

    private func broadcast(_ message: Reply) { notifyWatchers(message, except: nil) }

    private func notifyWatchers(_ message: Reply, except: Int?) {
        for id in watchers where id != except { clients[id]?.send(message) }
    }

    private func saveBindings() {
        guard let bindingsPath else { return }
        Self.save(bindings, to: bindingsPath)
    }

    private static func save(_ bindings: [String: BindingOwner], to path: String) {
        try? FileBytes.write(Array(bindingsText(bindings).utf8), to: path, mode: 0o600)
    }
}

/// A Dispatch timer that fires once `seconds` from when it is set, set again as often as wanted
/// at no cost (a Dispatch source is thread-safe; Dispatch does not mark it Sendable).
final class DeadlineTimer: @unchecked Sendable {
    private let source: any DispatchSourceTimer

    init(_ handler: @escaping @Sendable () -> Void) {
        source = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "posmini-arm-timeouts"))
        source.setEventHandler(handler: handler)
        source.activate()
    }

    /// Fires `seconds` from now (at once if that has passed); nil: never.
    func set(_ seconds: Double?) {
        if let seconds {
            source.schedule(deadline: .now() + .nanoseconds(Int(max(0, seconds) * 1e9)), leeway: .milliseconds(5))
        } else {
            source.schedule(deadline: .distantFuture)
        }
    }

    deinit { source.cancel() }
}
