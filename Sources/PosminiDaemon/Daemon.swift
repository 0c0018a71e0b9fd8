import AudioFile
import PosminiConfig
import PosminiProtocol
import Logging
import ServiceLifecycle
import UnixSignals
import NIOCore
public import ReaderIO
public import ReaderPipeline
import SwipeDecoder
import Synchronization
import CPosix
#if canImport(Glibc)
import Glibc
#endif

/// What the command line adds to the configuration file.
public struct DaemonOptions: Sendable {
    public var configPath = "/etc/posminid/posminid.conf"
    /// The configuration file must exist (it was named on the command line).
    public var configRequired = false
    public var socketPath: String?
    public var devices: [String] = []
    /// Recordings played in real time as readers (`--replay`), for tests and demonstrations.
    public var replays: [String] = []
    /// Replays as fast as they decode rather than in real time, and how many times over (the
    /// soak test: an hour of audio in a minute or two).
    public var replayFast = false
    public var replayRepeat = 1
    /// The recordings start when a client first arms a reader (scripted tests and demos).
    public var replayHold = false
    /// Test seam: each recording advances only while its reader is armed, so a replay played
    /// flat out cannot outrun the client that is to receive its cards.
    public var replayWhileArmed = false
    /// Test seam: watchers' SWIPE and SWIPE_IGNORED carry `decided_at`, the stream position
    /// (in the reader's samples) where the decoder decided the swipe.
    public var exposeDecidedAt = false
    /// Test seam: readers found through udev play this recording, paced, instead of opening
    /// ALSA (the hot-plug tests, on a umockdev testbed).
    public var udevReplay: String?
    /// Test seam: the first such play stops for good at this second, as a reader pulled out
    /// mid-swipe, and the log says so.
    public var udevReplayStopAt: Double?
    /// Test seam: exit right after a transaction counter is reserved, before anything is
    /// published (the counter's crash test).
    public var crashAfterReserve = false
    public var logLevel: String?
    public var stateDirectory: String?
    /// Use the published test key (demonstrations and tests), with a warning on every card.
    public var testKey = false
    /// The initial-key file (default: the systemd credential, else /etc/posminid/ik).
    public var keyFile: String?
    /// The test mode for integrators (`--simulate`, with `--test-key` only): a simulated reader
    /// whose next card plays when a client arms (not with `simulateManual`: only on `simulate
    /// swipe`). `replays` are its swipes then, in turn, instead of the built-in cards.
    public var simulate = false
    public var simulateManual = false

    public init() {}
}

/// Hands one reader's events to the hub one at a time and in order, until the session ends.
public enum EventPump {
    public static func run(_ events: EventQueue<ReaderEvent>, reader id: String, hub: ReaderHub,
                           started: @escaping @Sendable (_ rate: Int, _ channels: Int, _ periodFrames: Int) async -> Void = { _, _, _ in },
                           ended: @escaping @Sendable (CaptureEnd?) async -> Void = { _ in }) async {
        await hub.take(events, reader: id, started: started, ended: ended)
    }
}

/// `posminid` itself: the hub, the readers and the socket server in one service group, with
/// systemd's readiness, status, watchdog and stopping notifications.
public enum Daemon {
    /// Runs until SIGTERM or SIGINT; returns the exit status.
    public static func run(_ options: DaemonOptions) async -> Int32 {
        // Large blocks (the decoder's buffers for a long swipe) are mapped and unmapped on their
        // own, so resident memory follows the heap in use over days of swipes.
        _ = posmini_fix_malloc_thresholds()
        var configuration: DaemonConfiguration
        do {
            configuration = try DaemonConfiguration.load(options.configPath, optional: !options.configRequired)
        } catch {
            StandardStreams.err("posminid: configuration refused: \(error)")
            return 2
        }
        if let socket = options.socketPath { configuration.socketPath = socket }
        if let level = options.logLevel { configuration.logLevel = level }
        if let state = options.stateDirectory { configuration.stateDirectory = state }
        guard let level = Logger.Level(rawValue: configuration.logLevel) else {
            StandardStreams.err("posminid: unknown log level '\(configuration.logLevel)'")
            return 2
        }
        let logger = Logger(label: "posminid") { StderrLogHandler(label: $0, level: level) }
        // SIGHUP is taken from here on (its default would end the process): one that comes as
        // soon as the socket serves, before the supervision task runs, waits for it.
        let reloads = await UnixSignalsSequence(trapping: .sighup)
        // No core dump, no ptrace by other users: the process holds card data and keys.
        if !ProcessProtection.forbidDumps() { logger.warning("could not make the process undumpable: core dumps may hold card data") }
        // A --replay recording is named on the command line: one that cannot be played (unreadable,
        // not a WAV, a rate outside 8-192 kHz) is refused at start, as a bad configuration is,
        // rather than leaving a daemon running without the reader it was asked for.
        var replays: [(path: String, source: FileSource)] = []
        var simulator: Simulator?
        if options.simulate {
            guard options.testKey else {
                logger.critical("--simulate needs --test-key: a simulated reader's cards are published test cards, never to be encrypted under a real key")
                return 2
            }
            var recordings: [(name: String, audio: PCMAudio)] = []
            for path in options.replays {
                do {
                    recordings.append((path, try FileSource.audio(wav: path)))
                } catch {
                    logger.critical("replay refused: \(error)")
                    return 2
                }
            }
            if let first = recordings.first, let other = recordings.first(where: { $0.audio.sampleRate != first.audio.sampleRate }) {
                logger.critical("--simulate: \(other.name) is at \(other.audio.sampleRate) Hz and \(first.name) at \(first.audio.sampleRate) Hz: the recordings of one simulated reader share one rate")
                return 2
            }
            simulator = Simulator(recordings: recordings, paced: !options.replayFast, manual: options.simulateManual)
        }
        for path in options.replays where simulator == nil {
            do {
                replays.append((path, try FileSource(wav: path, paced: !options.replayFast, repeats: options.replayRepeat)))
            } catch {
                logger.critical("replay refused: \(error)")
                return 2
            }
        }
        let encryptor: CardEncryptor
        do {
            encryptor = try KeySetup.encryptor(options: options, configuration: &configuration, logger: logger)
        } catch {
            logger.critical("\(error)")
            return 2
        }

        let passed: Int32?
        do {
            passed = try Systemd.passedSocket()
        } catch {
            logger.critical("\(error)")
            return 2
        }
        let hub = ReaderHub(maximumArm: configuration.armTimeout,
                            bindingsPath: configuration.stateDirectory + "/bindings",
                            encryptor: encryptor, exposeDecidedAt: options.exposeDecidedAt,
                            clearNonPayment: configuration.clearNonPayment)
        if configuration.clearNonPayment { logger.warning("\(ClearNonPayment.warning)") }
        if hub.ownerlessBindings > 0 {
            logger.notice("\(configuration.stateDirectory)/bindings is 0.5.0's, without owners: its \(hub.ownerlessBindings) binding(s) now belong to the admins (root, admin_group); the file is written with owners from now on")
        }
        let server = SocketServer(hub: hub, configuration: configuration, logger: logger, messageLog: MessageLog.open(testKey: options.testKey))
        let listening: NIOAsyncChannel<SocketServer.Connection, Never>
        do {
            listening = try await server.listen(path: configuration.socketPath, passed: passed, group: configuration.socketGroup)
        } catch {
            logger.critical("cannot listen on \(configuration.socketPath): \(error)")
            return 1
        }
        logger.info(passed != nil ? "serving on the socket systemd passed" : "serving on \(configuration.socketPath)")
        var socketFile = stat()
        if case .success = SystemCall.attempt("stat", { stat(configuration.socketPath, &socketFile) }) {
            for said in AccessPolicy.unreachable(configuration: configuration, mode: UInt32(socketFile.st_mode), group: socketFile.st_gid) {
                logger.warning("\(said)")
            }
        }
        let readers = ReaderManager(hub: hub, configuration: configuration, logger: logger,
                                    udevReplay: options.udevReplay, udevReplayStopAt: options.udevReplayStopAt)
        await hub.setReleaser { [readers] reader, seconds in await readers.release(reader, seconds: seconds) }
        // The replay seam holds each recording's decoder (not its file: the audio already read
        // ahead into the session's ring must wait too).
        var holds: [String: ReplayHold] = [:]
        if options.replayWhileArmed {
            for k in replays.indices { holds[ReaderManager.replayID(k, of: replays.count)] = ReplayHold() }
            await hub.setArmObserver { [holds] reader, armed in
                if armed { holds[reader]?.open() } else { holds[reader]?.close() }
            }
        } else if options.replayHold {
            let hold = ReplayHold()
            for (_, source) in replays { source.hold = hold }
            await hub.setArmObserver { _, armed in if armed { hold.open() } }
        }
        if let simulator {
            await readers.startSimulated(simulator.source)
            await hub.setSimulator { [readers, encryptor] action in
                switch action {
                case .swipe(let card): return simulator.play(card)
                case .remove: await readers.removeSimulated()
                case .insert: await readers.insertSimulated(simulator.source)
                case .exhaustKey: encryptor.exhaustForTest()
                }
                return .success(nil)
            }
            if !simulator.manual {
                await hub.setArmObserver { reader, armed in
                    if armed, reader == Simulator.readerID { simulator.playNext() }
                }
            }
            logger.warning("TEST MODE: reader \(Simulator.readerID) is simulated; its cards are published test cards (posminictl simulate)")
        }
        let started = await readers.startAll(devices: configuration.devices + options.devices, replays: replays, holds: holds)
        // The sessions hold the sources now: a recording's samples go when its session ends.
        replays.removeAll()
        logger.info("\(started) reader(s) capturing")

        var services: [any Service] = [
            ServerService(server: server, listening: listening, hub: hub, ownsSocket: passed == nil ? configuration.socketPath : nil),
            ReadersService(readers: readers),
            SupervisionService(hub: hub, readers: readers, server: server, options: options, logger: logger, reloads: reloads),
        ]
        if let path = configuration.metricsTextfile {
            // Before the readers stop (services stop in reverse order): the last file holds
            // every reader's final counts.
            services.insert(MetricsFileService(path: path, interval: configuration.metricsInterval, hub: hub, readers: readers,
                                               logger: logger), at: 2)
            logger.info("metrics for node_exporter's textfile collector: \(path), every \(configuration.metricsInterval) s")
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("stopped with an error: \(error)")
            return 1
        }
        logger.info("stopped")
        return 0
    }
}

/// Issue 25: the metrics as a file for node_exporter's textfile collector, rewritten every
/// `interval` seconds and once more at stop. Each write is whole (a temporary file of another
/// name in the same directory, mode 0644, flushed, renamed over the file), so the collector never
/// reads half of one. A directory that is missing, read-only or full is logged once, retried at
/// every interval, and its recovery logged: never fatal.
struct MetricsFileService: Service {
    let path: String
    let interval: Int
    let hub: ReaderHub
    let readers: ReaderManager
    let logger: Logger

    func run() async throws {
        let writer = MetricsFileWriter(path: path, logger: logger)
        await writer.write(hub: hub, readers: readers)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    do { try await Task.sleep(for: .seconds(interval)) } catch { return }
                    await writer.write(hub: hub, readers: readers)
                }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await writer.write(hub: hub, readers: readers)
    }
}

/// Writes the metrics file, and says once when it cannot and once when it can again.
actor MetricsFileWriter {
    let path: String
    let logger: Logger
    private var failing = false

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    func write(hub: ReaderHub, readers: ReaderManager) async {
        await readers.reportStatistics()
        let text = await hub.metricsText()
        do {
            try FileBytes.write(Array(text.utf8), to: path, mode: 0o644)
            if failing {
                failing = false
                logger.notice("metrics file \(path) written again")
            }
        } catch {
            if !failing {
                failing = true
                logger.warning("cannot write the metrics file: \(error); trying again every interval")
            }
        }
    }
}

/// `clear_non_payment = true`, as the log says it at start and at each reload.
enum ClearNonPayment {
    static let warning = "clear_non_payment is on: cards without a payment track (loyalty, gift, access) go to the arming client in clear; payment cards never do"
}

/// The socket server, until shutdown: then armed clients hear CANCELLED, and the socket closes.
struct ServerService: Service {
    let server: SocketServer
    let listening: NIOAsyncChannel<SocketServer.Connection, Never>
    let hub: ReaderHub
    /// The socket file this process created (removed at the end); nil when systemd owns it.
    let ownsSocket: String?

    func run() async throws {
        let channel = listening.channel
        let hub = self.hub, server = self.server
        try await withGracefulShutdownHandler {
            try await server.serve(listening)
        } onGracefulShutdown: {
            Task {
                // No new clients; armed ones hear CANCELLED, have a moment to receive it, and are closed.
                channel.close(promise: nil)
                await hub.shutdown()
                try? await Task.sleep(for: .milliseconds(200))
                server.closeAll()
            }
        }
        if let ownsSocket { _ = SystemCall.attempt("unlink") { unlink(ownsSocket) } }
    }
}

/// Keeps the readers until shutdown, then stops them (threads joined, devices closed).
struct ReadersService: Service {
    let readers: ReaderManager

    func run() async throws {
        let readers = self.readers
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await readers.follow() }
            try? await gracefulShutdown()
            await readers.stopAll()
        }
    }
}

/// systemd's side: READY=1 once readers are enumerated and the socket serves, STATUS= lines,
/// WATCHDOG=1 while the hub answers and every decoder thread lives, STOPPING=1 at the end;
/// SIGHUP reloads the configuration.
struct SupervisionService: Service {
    /// Start-up touched far more code than serving needs (argument parsing, configuration, the
    /// key, NIO's bootstrap, the first clients): half a minute in, those clean pages go back;
    /// what the daemon keeps using returns on its next touch.
    static func releaseStartUpPages(_ logger: Logger) {
        let released = posmini_release_file_pages()
        if released < 0 {
            logger.debug("start-up pages kept: madvise(MADV_PAGEOUT) refused (\(String(cString: strerror(errno))))")
        } else {
            logger.debug("start-up pages handed back over \(released >> 20) MiB of file mappings")
        }
    }

    let hub: ReaderHub
    let readers: ReaderManager
    let server: SocketServer
    let options: DaemonOptions
    let logger: Logger
    let reloads: UnixSignalsSequence

    func run() async throws {
        Systemd.notify("READY=1\nSTATUS=\(await hub.summary())")
        let interval = Systemd.watchdogInterval
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in reloads.cancelOnGracefulShutdown() {
                    do {
                        let fresh = try DaemonConfiguration.load(options.configPath, optional: !options.configRequired)
                        server.reload(fresh)
                        await hub.setMaximumArm(fresh.armTimeout)
                        await hub.setClearNonPayment(fresh.clearNonPayment)
                        if fresh.clearNonPayment { logger.warning("\(ClearNonPayment.warning)") }
                        logger.notice("configuration reloaded from \(options.configPath): access list, client limits, arm timeout and clear_non_payment applied; devices, masking, log level and the socket apply at the next start")
                    } catch {
                        logger.error("reload refused, keeping the running configuration: \(error)")
                    }
                }
            }
            group.addTask {
                var lastStatus = ""
                var lastTrim = ContinuousClock.now
                var startUpPagesKept = true
                while !Task.isCancelled {
                    do { try await Task.sleep(for: .milliseconds(Int((interval ?? 5) * 1_000))) } catch { return }
                    // What malloc kept from a peak (a backlog of swipes, a crowd of clients) goes
                    // back every half minute: resident memory follows the heap in use.
                    if ContinuousClock.now - lastTrim > .seconds(30) {
                        _ = posmini_trim_heap()
                        lastTrim = .now
                        if startUpPagesKept {
                            startUpPagesKept = false
                            Self.releaseStartUpPages(logger)
                        }
                    }
                    await readers.reportStatistics()
                    // The hub answered (an actor that is stuck would not); the decoders live.
                    let summary = await hub.summary()
                    if interval != nil, await readers.decodersHealthy { Systemd.notify("WATCHDOG=1") }
                    if summary != lastStatus {
                        Systemd.notify("STATUS=\(summary)")
                        lastStatus = summary
                    }
                }
            }
            try? await gracefulShutdown()
            Systemd.notify("STOPPING=1")
            // First of all (this service stops first): armed clients hear CANCELLED, before
            // their readers go away under them.
            await hub.shutdown()
            group.cancelAll()
        }
    }
}
