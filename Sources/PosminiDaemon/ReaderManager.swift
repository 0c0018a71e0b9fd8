import PosminiConfig
import PosminiProtocol
import Logging
import ServiceLifecycle
import UnixSignals
import NIOCore
import ReaderIO
import ReaderPipeline
import SwipeDecoder
import Synchronization
import CPosix
#if canImport(Glibc)
import Glibc
#endif

/// The readers: one session per capturing reader. Readers come from the configuration
/// (devices that are not a card, opened at start), from replayed recordings, from udev (cards
/// marked `POSMINI_READER=1` by the udev rules, captured as soon as udev has finished with them)
/// and from configured cards (`hw:CARD=PCH`: captured while their jack is plugged). Device events
/// arrive from the monitor thread and are handled one at a time, in order.
actor ReaderManager {
    let hub: ReaderHub
    let logger: Logger
    let configuration: DaemonConfiguration
    /// Test hook: readers found through udev replay this recording instead of opening ALSA.
    let udevReplay: String?
    let udevReplayStopAt: Double?
    /// The udev replay's stop (a test seam) has been given to a play.
    private var udevReplayStopUsed = false
    /// A running session: the pipeline and its queue to the hub.
    struct Running {
        let session: ReaderSession
        let events: EventQueue<ReaderEvent>
    }
    /// Every reader, one slot each, and its lifecycle.
    private var registry = ReaderRegistry<Running>()
    private var monitor: DeviceMonitor?
    /// Configured devices that name a card, in the configuration's order (the first that
    /// matches a card found takes it).
    private var configuredCards: [(device: String, reference: CardReference)] = []
    /// Delay before the first reopening; it doubles with each failure up to `retryLimit`.
    private let retryFirst = 1.0
    private let retryLimit = 30.0
    private let events: AsyncStream<DeviceEvent>
    private let eventSink: AsyncStream<DeviceEvent>.Continuation

    init(hub: ReaderHub, configuration: DaemonConfiguration, logger: Logger, udevReplay: String? = nil, udevReplayStopAt: Double? = nil) {
        self.udevReplayStopAt = udevReplayStopAt
        self.hub = hub
        self.configuration = configuration
        self.logger = logger
        self.udevReplay = udevReplay
        (events, eventSink) = AsyncStream.makeStream(of: DeviceEvent.self)
    }

    /// Starts every reader there is now and the device monitor; returns how many capture.
    func startAll(devices: [String], replays: [(path: String, source: FileSource)], holds: [String: ReplayHold] = [:]) async -> Int {
        for device in devices {
            if let reference = CardReference(device: device) {
                configuredCards.append((device, reference))
                registry.register(device, kind: .configuredCard)
                var info = ReaderInfo(id: device, name: device)
                info.device = device
                await hub.readerAppeared(info, present: false)
                continue
            }
            registry.register(device, kind: .plainDevice)
            var info = ReaderInfo(id: device, name: device)
            info.device = device
            await hub.readerAppeared(info, present: false)
            await startCapture(id: device, device: device)
        }
        for (k, (path, source)) in replays.enumerated() {
            var info = ReaderInfo(id: Self.replayID(k, of: replays.count), name: "replay of \(path)")
            info.source = .replay
            registry.register(info.id, kind: .replay)
            await start(info, source: source, hold: holds[info.id])
        }
        let sink = eventSink
        do {
            let monitor = try DeviceMonitor { sink.yield($0) }
            self.monitor = monitor
            // Without udevd nothing marks a card initialized: take the configured ones as found.
            for card in monitor.start(acceptUninitialized: !Self.udevRunning) { await handle(.cardReady(card)) }
        } catch {
            logger.warning("no udev monitor (\(error)): readers plugged later are not noticed; configured cards are opened now")
            for (device, _) in configuredCards {
                registry.register(device, kind: .plainDevice)
                await startCapture(id: device, device: device)
            }
        }
        return registry.sessions.count
    }

    /// Starts the test mode's simulated reader.
    func startSimulated(_ source: SimulatedSource) async {
        var info = ReaderInfo(id: Simulator.readerID, name: "simulated reader (test mode)")
        info.source = .simulator
        info.jack = .noJack
        registry.register(info.id, kind: .replay)
        await start(info, source: source)
    }

    /// The simulated reader is pulled out: its arm ends with READER_REMOVED.
    func removeSimulated() async {
        if let running = registry.stop(Simulator.readerID) { stop(Simulator.readerID, running) }
        await hub.readerRemoved(id: Simulator.readerID)
    }

    /// The simulated reader is plugged in again (nothing happens when it is there).
    func insertSimulated(_ source: SimulatedSource) async {
        guard registry.session(Simulator.readerID) == nil, let info = await hub.reader(Simulator.readerID) else { return }
        var present = info
        present.present = true
        await start(present, source: source)
    }

    /// The reader id of replay `k` of `count`: "replay" alone, else "replay1", "replay2"…
    static func replayID(_ k: Int, of count: Int) -> String { count == 1 ? "replay" : "replay\(k + 1)" }

    /// Whether udevd runs (its control socket exists).
    static var udevRunning: Bool { (try? SystemCall.retrying("access") { access("/run/udev/control", F_OK) }) != nil }

    /// Handles device events until the monitor stops.
    func follow() async {
        for await event in events { await handle(event) }
    }

    func handle(_ event: DeviceEvent) async {
        switch event {
        case .cardReady(let card):
            if let id = registry.reader(atSyspath: card.syspath) {
                // udev said more about a card in use: capture again if it had failed.
                if registry.kind(id) == .markedCard && registry.session(id) == nil {
                    await startCapture(id: id, device: card.captureDevice)
                }
                return
            }
            if card.isMarkedReader {
                let id = card.stableID
                registry.register(id, kind: .markedCard)
                registry.cardFound(id, card: card)
                logger.notice("reader \(id) plugged: \(card.displayName), card \(card.cardID ?? "?")")
                var info = Self.info(card, id: id, source: .udev)
                info.jack = .noJack
                await hub.readerAppeared(info)
                await startCapture(id: id, device: card.captureDevice)
            } else if let configured = configuredCards.first(where: { card.matches($0.reference) }) {
                registry.cardFound(configured.device, card: card)
                logger.notice("configured card \(configured.device) found (\(card.displayName)): following its jack")
                await hub.readerAppeared(Self.info(card, configured: configured.device), present: false)
                monitor?.watchJacks(key: configured.device, control: card.controlDevice)
            } else {
                logger.debug("sound card \(card.cardID ?? card.syspath) is not a reader: left alone")
            }
        case .cardRemoved(let card):
            guard let id = registry.reader(atSyspath: card.syspath) else { return }
            if registry.kind(id) == .configuredCard { monitor?.unwatchJacks(key: id) }
            logger.notice("reader \(id) removed")
            if let running = registry.cardLost(id) { stop(id, running) }
            await hub.readerRemoved(id: id)
        case .jack(let key, let state):
            guard registry.kind(key) == .configuredCard, let card = registry.card(key) else { return }
            let jack: JackStatus = state.plugged.map { $0 ? .plugged : .unplugged } ?? .noJack
            await hub.readerJack(id: key, jack: jack, flaps: state.flaps)
            if state.plugged != false {
                if registry.session(key) == nil {
                    if state.plugged == true { logger.notice("reader \(key): jack plugged (\(state.jacks.joined(separator: ", ")))") }
                    await captureConfigured(key, card: card)
                }
            } else {
                if registry.session(key) != nil { logger.notice("reader \(key): jack unplugged") }
                if let running = registry.stop(key) { stop(key, running) }
                await hub.readerRemoved(id: key)
            }
            if state.flaps > 0 && state.flaps != registry.jackFlaps(key) {
                logger.warning("reader \(key): the jack's contact changed \(state.flaps) time(s) within a second of the last change: a loose or worn jack")
            }
            registry.setJackFlaps(key, state.flaps)
        case .jackFailed(let key, let message):
            guard registry.kind(key) == .configuredCard, let card = registry.card(key) else { return }
            logger.warning("reader \(key): no jack detection (\(message)): captured while the card is present")
            await hub.readerJack(id: key, jack: .noJack, flaps: 0)
            if registry.session(key) == nil { await captureConfigured(key, card: card) }
        }
    }

    private static func info(_ card: SoundCard, id: String, source: ReaderSource) -> ReaderInfo {
        var info = ReaderInfo(id: id, name: card.displayName)
        info.source = source
        info.card = card.cardID
        info.device = card.captureDevice
        info.udevPath = card.properties["ID_PATH"]
        info.serial = card.properties["ID_SERIAL"]
        return info
    }

    /// A configured card's reader, as configured (`device` names it), and the card's identity.
    private static func info(_ card: SoundCard, configured device: String) -> ReaderInfo {
        var info = info(card, id: device, source: .config)
        info.device = device
        return info
    }

    /// A configured card's reader is there (jack plugged, or no jack detection): present, and
    /// captured through the configured name with the card's number.
    private func captureConfigured(_ device: String, card: SoundCard) async {
        await hub.readerAppeared(Self.info(card, configured: device))
        await startCapture(id: device, device: card.resolving(device))
    }

    /// Opens `device` for reader `id` (or the test hook's recording); a failure is reported on
    /// the reader, which stays present.
    private func startCapture(id: String, device: String) async {
        registry.useDevice(id, device)
        guard !registry.isReleased(id) else { return }
        let source: any CaptureSource
        do {
            if let udevReplay {
                let file = try FileSource(wav: udevReplay, paced: true)
                // The seam's second half: the first play stops for good at this second (a reader
                // pulled out mid-swipe, whatever the machine's pace); later plays run whole.
                if !udevReplayStopUsed, let seconds = udevReplayStopAt {
                    udevReplayStopUsed = true
                    file.stopAt = Int(seconds * Double(file.sampleRate))
                    file.stopped = { [logger] frame in logger.info("test seam: the udev replay of reader \(id) stopped at frame \(frame)") }
                }
                source = file
            } else {
                source = try ALSACapture(device: device, rate: configuration.rate)
            }
        } catch {
            await failed(id, "capture not opened: \(error)")
            return
        }
        guard let info = await hub.reader(id) else { return }
        await start(info, source: source)
    }

    /// Capture of a wanted reader failed: said on the reader (and in the log, once per distinct
    /// reason), and tried again later.
    private func failed(_ id: String, _ reason: String) async {
        let (token, attempt, newReason) = registry.failed(id, reason: reason)
        if newReason {
            logger.error("reader \(id): \(reason); trying again")
        } else {
            logger.debug("reader \(id): still \(reason)")
        }
        await hub.readerFailed(id: id, error: reason)
        let delay = min(retryLimit, retryFirst * Double(1 << min(attempt - 1, 16)))
        Task { [weak self] in
            try? await Task.sleep(for: .milliseconds(Int(delay * 1_000)))
            await self?.retry(id, token: token)
        }
    }

    private func retry(_ id: String, token: Int) async {
        guard registry.retryDue(id, token: token) else { return }
        guard let device = registry.device(id), await wanted(id) else {
            registry.abandonRetries(id)
            return
        }
        await startCapture(id: id, device: device)
    }

    /// Whether reader `id` should be capturing: a configured device that is not a card; a
    /// marked card still plugged in; a configured card still present whose jack is not out.
    private func wanted(_ id: String) async -> Bool {
        switch registry.kind(id) {
        case .plainDevice: return true
        case .markedCard: return registry.card(id) != nil
        case .configuredCard:
            guard registry.card(id) != nil else { return false }
            return await hub.reader(id)?.jack != .unplugged
        case .replay, nil: return false
        }
    }

    /// A session's capture is running: whatever failed before is over.
    private func captureRunning(_ id: String) {
        if registry.running(id) { logger.notice("reader \(id): capturing again") }
    }

    private func start(_ info: ReaderInfo, source: any CaptureSource, hold: ReplayHold? = nil) async {
        var sessionConfiguration = ReaderSession.Configuration()
        sessionConfiguration.hold = hold
        sessionConfiguration.realTimePriority = configuration.realTimePriority
        sessionConfiguration.decoder.maskPolicy = configuration.maskPolicy
        let hub = self.hub, logger = self.logger, id = info.id
        // One ordered, bounded queue from the decoder thread to the hub: events reach it one
        // at a time and in order (an `ended` never overtakes the last swipes), and client
        // requests are handled between them. A live source never waits on it (it drops and
        // counts, far beyond human swipe rates); a recording played flat out waits for room.
        let events = EventQueue<ReaderEvent>(capacity: Self.eventCapacity)
        let waitForRoom = !source.isRealTime
        let session = ReaderSession(source: source, configuration: sessionConfiguration) { event in
            switch event {
            case .notice(let text):
                logger.warning("reader \(id): \(text)")
                return
            case .noiseBurst(let burst):
                // On to the hub for STATUS noise_bursts; never a message for a client.
                logger.debug("reader \(id): \(burst), no swipe")
            case .swipe(let swipe):
                // Reasons and counts only: never the card.
                let outcome = swipe.readTracks.isEmpty ? "failed (\(swipe.problem?.rawValue ?? "unreadable"))" : "read"
                logger.info("reader \(id): swipe \(outcome)")
            case .started, .ended:
                break
            }
            // The replay seam: a card ends the arm, so the decoder stands still from here until
            // the reader is armed again (the hub's arm observer opens the hold then).
            if let hold, case .swipe(let swipe) = event, !swipe.readTracks.isEmpty { hold.close() }
            if !events.put(event, waitForRoom: waitForRoom), events.overflows > 0, case .swipe = event {
                logger.warning("reader \(id): a swipe was dropped: \(events.overflows) event(s) came faster than the hub took them")
            }
        }
        let token = registry.began(id, session: Running(session: session, events: events))
        Task { [weak self] in
            await EventPump.run(events, reader: id, hub: hub, started: { [weak self] rate, channels, period in
                logger.info("reader \(id) capturing: \(rate) Hz, \(channels) channel(s), \(period)-frame periods")
                await self?.captureRunning(id)
            }, ended: { [weak self] reason in
                if let reason { logger.notice("reader \(id) ended: \(reason)") }
                await self?.sessionEnded(id: id, token: token, reason: reason)
            })
        }
        await hub.readerAppeared(info)
        session.start()
    }

    /// Events a reader's queue holds: minutes of swipes at any human rate.
    static let eventCapacity = 256

    /// `release`: closes the reader's device for `seconds` (posminid --diagnose uses it), then
    /// opens it again if the reader is still there; 0 reopens now. Returns why not.
    func release(_ id: String, seconds: Double) async -> String? {
        guard let device = registry.device(id) else { return "a recording has no device to release" }
        if seconds > 0 {
            logger.notice("reader \(id): device \(device) released for \(Int(seconds)) s (diagnose)")
            let (token, running) = registry.release(id)
            if let running { stop(id, running) }
            Task { [weak self] in
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1_000)))
                await self?.reopen(id, token: token)
            }
        } else if registry.isReleased(id) {
            let (token, _) = registry.release(id)
            await reopen(id, token: token)
        }
        return nil
    }

    private func reopen(_ id: String, token: Int) async {
        guard registry.reopenDue(id, token: token) else { return }
        guard registry.session(id) == nil, let device = registry.device(id), await hub.reader(id)?.present == true else { return }
        logger.notice("reader \(id): device \(device) taken back after diagnose")
        await startCapture(id: id, device: device)
    }

    /// A session ended on its own (device gone, recording over): unless a newer session took
    /// its place, the reader is absent.
    private func sessionEnded(id: String, token: Int, reason: CaptureEnd?) async {
        guard let current = registry.ended(id, token: token) else { return }
        retire(id, current)
        // A device that failed while its reader is still wanted is opened again (a card that
        // was unplugged is no longer wanted once udev says so).
        if let reason, reason != .endOfSource, registry.device(id) != nil, await wanted(id) {
            let message = "capture ended: \(reason)"
            await hub.readerRemoved(id: id, error: message)
            await failed(id, message)
        } else {
            await hub.readerRemoved(id: id)
        }
    }

    /// Stops a session the registry has let go of, and keeps its counters.
    private func stop(_ id: String, _ running: Running) {
        // First the queue: a decoder thread waiting for room in it gives up, so it can be joined.
        running.events.close()
        running.session.stop()
        retire(id, running)
    }

    /// Every session's decoder is alive: its thread has not stopped while its source runs.
    var decodersHealthy: Bool {
        registry.sessions.allSatisfy { $0.session.session.isFinished || $0.session.session.decoderAlive(within: 5) }
    }

    /// Each reader's counters since start: its sessions that ended, and the one running.
    /// Hands every reader's capture counters to the hub, where STATUS and the metrics read them.
    func reportStatistics() async {
        for (id, stats) in statistics() { await hub.readerStatistics(id: id, stats) }
    }

    func statistics() -> [(String, ReaderStatistics)] {
        var all: [String: ReaderStatistics] = [:]
        for id in registry.ids { if let past = registry.past(id) { all[id] = past } }
        for (id, running) in registry.sessions {
            all[id] = ReaderStatistics.sum(all[id], Self.counters(running))
        }
        return all.map { ($0.key, $0.value) }
    }

    private static func counters(_ running: Running) -> ReaderStatistics {
        var now = running.session.statistics
        now.eventsDropped = running.events.overflows
        return now
    }

    /// A session is over: its counters join the reader's past.
    private func retire(_ id: String, _ running: Running) {
        registry.retire(id, statistics: Self.counters(running))
    }

    func stopAll() {
        monitor?.stop()
        monitor = nil
        eventSink.finish()
        for running in registry.stopAll() {
            running.events.close()
            running.session.stop()
        }
    }
}
