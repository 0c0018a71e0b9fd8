import PosminiProtocol
import Logging
import ServiceLifecycle
import UnixSignals
import NIOCore
import ReaderIO
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
    public var logLevel: String?
    public var stateDirectory: String?
    /// Use the published test key (demonstrations and tests), with a warning on every card.
    public var testKey = false
    /// The initial-key file (default: the systemd credential, else /etc/posminid/ik).
    public var keyFile: String?

    public init() {}
}

/// The reader sessions: one per configured device and per replayed recording; their events go
/// to the hub. A session that ends (device gone, recording over) makes its reader absent.
final class ReaderManager: Sendable {
    let hub: ReaderHub
    let logger: Logger
    let configuration: DaemonConfiguration
    private let sessions = Mutex<[String: ReaderSession]>([:])

    init(hub: ReaderHub, configuration: DaemonConfiguration, logger: Logger) {
        self.hub = hub
        self.configuration = configuration
        self.logger = logger
    }

    /// Starts every reader; returns how many started.
    func startAll(devices: [String], replays: [String]) async -> Int {
        var started = 0
        for device in devices {
            do {
                let source = try ALSACapture(device: device, rate: configuration.rate)
                await start(id: device, name: device, source: source)
                started += 1
            } catch {
                logger.error("reader \(device) not opened: \(error)")
            }
        }
        for (k, path) in replays.enumerated() {
            do {
                let source = try FileSource(wav: path, paced: true)
                let id = replays.count == 1 ? "replay" : "replay\(k + 1)"
                await start(id: id, name: "replay of \(path)", source: source)
                started += 1
            } catch {
                logger.error("replay \(path) not opened: \(error)")
            }
        }
        return started
    }

    private func start(id: String, name: String, source: any CaptureSource) async {
        var sessionConfiguration = ReaderSession.Configuration()
        sessionConfiguration.realTimePriority = configuration.realTimePriority
        sessionConfiguration.decoder.maskPolicy = configuration.maskPolicy
        let hub = self.hub, logger = self.logger
        let session = ReaderSession(source: source, configuration: sessionConfiguration) { event in
            switch event {
            case .started(let rate, let channels, let period):
                logger.info("reader \(id) capturing: \(rate) Hz, \(channels) channel(s), \(period)-frame periods")
                Task { await hub.readerCapturing(id: id, true) }
            case .notice(let text):
                logger.warning("reader \(id): \(text)")
            case .swipe(let swipe):
                // Reasons and counts only: never the card.
                let outcome = swipe.readTracks.isEmpty ? "failed (\(swipe.problem?.rawValue ?? "unreadable"))" : "read"
                logger.info("reader \(id): swipe \(outcome)")
                Task { await hub.swipe(swipe, reader: id) }
            case .ended(let reason):
                if let reason { logger.notice("reader \(id) ended: \(reason)") }
                Task { await hub.readerRemoved(id: id) }
            }
        }
        sessions.withLock { $0[id] = session }
        await hub.readerAppeared(id: id, name: name)
        session.start()
    }

    /// Every session's decoder is alive: its thread has not stopped while its source runs.
    var decodersHealthy: Bool {
        sessions.withLock { all in all.values.allSatisfy { $0.isFinished || $0.decoderAlive(within: 5) } }
    }

    func statistics() -> [(String, ReaderStatistics)] {
        sessions.withLock { $0.map { ($0.key, $0.value.statistics) } }
    }

    func stopAll() {
        let all = sessions.withLock { s -> [ReaderSession] in
            let list = Array(s.values)
            s.removeAll()
            return list
        }
        for session in all { session.stop() }
    }
}

/// `posminid` itself: the hub, the readers and the socket server in one service group, with
/// systemd's readiness, status, watchdog and stopping notifications.
public enum Daemon {
    /// Runs until SIGTERM or SIGINT; returns the exit status.
    public static func run(_ options: DaemonOptions) async -> Int32 {
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
        // No core dump, no ptrace by other users: the process holds card data and keys.
        if posmini_set_undumpable() != 0 { logger.warning("could not make the process undumpable: core dumps may hold card data") }
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
                            encryptor: encryptor)
        let server = SocketServer(hub: hub, configuration: configuration, logger: logger)
        let listening: NIOAsyncChannel<SocketServer.Connection, Never>
        do {
            listening = try await server.listen(path: configuration.socketPath, passed: passed, group: configuration.socketGroup)
        } catch {
            logger.critical("cannot listen on \(configuration.socketPath): \(error)")
            return 1
        }
        logger.info(passed != nil ? "serving on the socket systemd passed" : "serving on \(configuration.socketPath)")
        let readers = ReaderManager(hub: hub, configuration: configuration, logger: logger)
        let started = await readers.startAll(devices: configuration.devices + options.devices, replays: options.replays)
        logger.info("\(started) reader(s) started")

        let services: [any Service] = [
            ServerService(server: server, listening: listening, hub: hub, ownsSocket: passed == nil ? configuration.socketPath : nil),
            ReadersService(readers: readers),
            SupervisionService(hub: hub, readers: readers, server: server, options: options, logger: logger),
        ]
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
        if let ownsSocket { unlink(ownsSocket) }
    }
}

/// Keeps the readers until shutdown, then stops them (threads joined, devices closed).
struct ReadersService: Service {
    let readers: ReaderManager

    func run() async throws {
        try? await gracefulShutdown()
        readers.stopAll()
    }
}

/// systemd's side: READY=1 once readers are enumerated and the socket serves, STATUS= lines,
/// WATCHDOG=1 while the hub answers and every decoder thread lives, STOPPING=1 at the end;
/// SIGHUP reloads the configuration.
struct SupervisionService: Service {
    let hub: ReaderHub
    let readers: ReaderManager
    let server: SocketServer
    let options: DaemonOptions
    let logger: Logger

    func run() async throws {
        Systemd.notify("READY=1\nSTATUS=\(await hub.summary())")
        let interval = Systemd.watchdogInterval
        let reloads = await UnixSignalsSequence(trapping: .sighup)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in reloads.cancelOnGracefulShutdown() {
                    do {
                        let fresh = try DaemonConfiguration.load(options.configPath, optional: !options.configRequired)
                        server.reload(fresh)
                        await hub.setMaximumArm(fresh.armTimeout)
                        logger.notice("configuration reloaded from \(options.configPath): access list, client limits and arm timeout applied; devices, masking, log level and the socket apply at the next start")
                    } catch {
                        logger.error("reload refused, keeping the running configuration: \(error)")
                    }
                }
            }
            group.addTask {
                var lastStatus = ""
                while !Task.isCancelled {
                    do { try await Task.sleep(for: .milliseconds(Int((interval ?? 5) * 1_000))) } catch { return }
                    for (id, stats) in readers.statistics() {
                        await hub.readerStatistics(id: id, overruns: stats.overruns, dropped: stats.dropped)
                    }
                    // The hub answered (an actor that is stuck would not); the decoders live.
                    let summary = await hub.summary()
                    if interval != nil && readers.decodersHealthy { Systemd.notify("WATCHDOG=1") }
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
