import PosminiConfig
import PosminiProtocol
import PosminiSystem
import NIOCore
import NIOPosix
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One line of a request, or the news that a line went over the limit.
enum LineEvent: Sendable, Hashable {
    case line([UInt8])
    case tooLong
}

/// Splits the byte stream into lines of at most `maximum` bytes (a trailing CR is dropped). A
/// line over the limit gives one `tooLong`, and its bytes up to its newline are dropped, however
/// the stream was cut into reads.
struct LineDecoder: ByteToMessageDecoder {
    typealias InboundOut = LineEvent
    let maximum: Int
    /// Inside a line already reported as too long: dropped up to its newline.
    private var discarding = false

    init(maximum: Int) { self.maximum = maximum }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
            let length = view.distance(from: view.startIndex, to: newline)
            if discarding {
                buffer.moveReaderIndex(forwardBy: length + 1)
                discarding = false
                return .continue
            }
            // A CRLF line may be as long as an LF line: the CR is framing, not content.
            let carriageReturn = length > 0 && view[view.index(before: newline)] == 13
            guard length <= maximum + (carriageReturn ? 1 : 0) else {
                buffer.moveReaderIndex(forwardBy: length + 1)
                context.fireChannelRead(wrapInboundOut(.tooLong))
                return .continue
            }
            var bytes = buffer.readBytes(length: length) ?? []
            buffer.moveReaderIndex(forwardBy: 1)
            if bytes.last == 13 { bytes.removeLast() }
            context.fireChannelRead(wrapInboundOut(.line(bytes)))
            return .continue
        }
        if discarding {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        // Not over the limit yet while the one byte past it may be a CR whose LF is on its way.
        let pending = buffer.readableBytes
        if pending > maximum + 1 || (pending == maximum + 1 && view.last != 13) {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            discarding = true
            context.fireChannelRead(wrapInboundOut(.tooLong))
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// The test suite's record of every line the daemon sends (`POSMINID_TEST_MESSAGE_LOG`, a
/// folder: `make test` checks each line against docs/schema). Kept only by a daemon under the
/// published test key: a daemon with a real key never writes its messages anywhere.
final class MessageLog: Sendable {
    private let fd: Int32

    static let variable = "POSMINID_TEST_MESSAGE_LOG"

    /// Nil unless the variable names a folder and the daemon runs under the test key.
    static func open(testKey: Bool, name: String = "posminid") -> MessageLog? {
        guard testKey, let folder = getenv(variable).map({ String(cString: $0) }), !folder.isEmpty else { return nil }
        let fd = Glibc.open(folder + "/\(name)-\(getpid()).jsonl", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        return fd >= 0 ? MessageLog(fd: fd) : nil
    }

    private init(fd: Int32) { self.fd = fd }

    /// One line, written whole (O_APPEND: lines from several connections do not interleave).
    func record(_ line: String) {
        let bytes = Array(line.utf8)
        bytes.withUnsafeBytes { _ = try? SystemCall.writeAll(fd, $0) }
    }

    deinit { SystemCall.close(fd) }
}

/// A connected client: its outgoing messages go through a queue bounded in bytes; a client that
/// lets it fill (does not read) is disconnected rather than allowed to hold up anyone else.
final class ClientConnection: HubClient, @unchecked Sendable {
    let clientID: Int
    let peer: ClientPeer
    let channel: any Channel
    let limit: Int
    let stream: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation
    private let pending = Atomic<Int>(0)
    let overflowed = Atomic<Bool>(false)

    let log: MessageLog?

    init(id: Int, peer: ClientPeer, channel: any Channel, limit: Int, log: MessageLog? = nil) {
        self.log = log
        clientID = id
        self.peer = peer
        self.channel = channel
        self.limit = limit
        (stream, continuation) = AsyncStream.makeStream(of: String.self)
    }

    func send(_ message: Reply) { send(message, id: nil) }

    /// Queues a direct reply to a request that carried `id` (echoed in the message).
    func send(_ message: Reply, id: String?) {
        let line = message.json(id: id).text + "\n"
        log?.record(line)
        let queued = pending.add(line.utf8.count, ordering: .relaxed).newValue
        guard queued <= limit else {
            if !overflowed.exchange(true, ordering: .relaxed) {
                continuation.finish()
                channel.close(promise: nil)
            }
            return
        }
        continuation.yield(line)
    }

    func written(_ line: String) { pending.subtract(line.utf8.count, ordering: .relaxed) }

    /// No more messages: the writer ends once the queue is flushed.
    func finish() { continuation.finish() }
}

/// Who may connect: root, members of the socket's group and of the allowed groups, and the
/// allowed users. Who is an admin: root, and the processes in the admin group.
struct AccessPolicy: Sendable {
    var users: Set<UInt32>
    var groups: Set<UInt32>
    var adminGroup: UInt32?

    init(configuration: DaemonConfiguration) {
        users = Set(configuration.allowUsers.compactMap(AccessPolicy.uid))
        groups = Set(([configuration.socketGroup] + configuration.allowGroups).compactMap(AccessPolicy.gid))
        adminGroup = configuration.adminGroup.flatMap(AccessPolicy.gid).flatMap { $0 == 0 ? nil : $0 }
    }

    /// Admin rights come from the connecting process's own groups (its gid and SO_PEERGROUPS,
    /// fixed at connect()), not from the group database: a process that dropped its
    /// supplementary groups (a sandboxed POS app started by a technician's account, a service
    /// with SupplementaryGroups= empty) does not carry admin rights it gave up, a user removed
    /// from the group loses them with the session that had them, and no NSS lookup (LDAP…)
    /// runs on the event loop.
    func isAdmin(uid: UInt32, gid: UInt32, groups peerGroups: [UInt32]) -> Bool {
        if uid == 0 { return true }
        guard let adminGroup else { return false }
        return gid == adminGroup || peerGroups.contains(adminGroup)
    }

    /// What the socket file lets through, said for each configured name it shuts out: the kernel
    /// checks the file's mode and group at connect(), before the daemon sees the peer, so an
    /// admin or an allowed user or group outside the socket's group cannot connect at all
    /// (mode 660) unless the file admits others too.
    static func unreachable(configuration: DaemonConfiguration, mode: UInt32, group: UInt32) -> [String] {
        guard mode & 0o002 == 0 else { return [] }
        let groupName = getgrgid(group).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? String(group)
        let file = "the socket file is mode \(String(mode & 0o777, radix: 8)), group \(groupName)"
        var said: [String] = []
        for name in configuration.allowGroups {
            guard let gid = gid(name), gid != group else { continue }
            said.append("allow_group '\(name)': its members can connect only if they are also in group '\(groupName)' (\(file))")
        }
        if let name = configuration.adminGroup, let gid = gid(name), gid != group {
            said.append("admin_group '\(name)': its members can connect (and so release readers for diagnose) only if they are also in group '\(groupName)' (\(file))")
        }
        for name in configuration.allowUsers {
            guard let uid = uid(name), uid != 0, !memberGroups(of: name).contains(group) else { continue }
            said.append("allow_user '\(name)' is not in group '\(groupName)', so cannot connect (\(file)): `usermod -aG \(groupName) \(name)`")
        }
        return said
    }

    /// The groups the group database gives `user` (primary and supplementary).
    static func memberGroups(of user: String) -> [UInt32] {
        guard let entry = getpwnam(user) else { return [] }
        let primary = entry.pointee.pw_gid
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, primary, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(user, primary, &groups, &count) >= 0 else { return [primary] }
        }
        return Array(groups.prefix(Int(count)))
    }

    static func uid(_ name: String) -> UInt32? {
        if let n = UInt32(name) { return n }
        guard let entry = getpwnam(name) else { return nil }
        return entry.pointee.pw_uid
    }

    static func gid(_ name: String) -> UInt32? {
        if let n = UInt32(name) { return n }
        guard let entry = getgrnam(name) else { return nil }
        return entry.pointee.gr_gid
    }

    func allows(uid: UInt32, gid: UInt32) -> Bool {
        // The daemon's own user has the daemon's rights already (a developer's test daemon,
        // `posminid --test-key --simulate` run without root): a POS user.
        if uid == 0 || uid == geteuid() || users.contains(uid) || groups.contains(gid) { return true }
        // The user's supplementary groups, from the group database.
        guard !groups.isEmpty, let entry = getpwuid(uid) else { return false }
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: 64)
        guard getgrouplist(entry.pointee.pw_name, gid, &list, &count) >= 0 else { return false }
        return list.prefix(Int(count)).contains { groups.contains($0) }
    }
}

/// The Unix-socket server: accepts clients, checks who they are, parses their lines and passes
/// requests to the hub.
final class SocketServer: Sendable {
    let hub: ReaderHub
    let logger: Logger
    private let limits: Mutex<(clients: Int, queue: Int)>
    var maxClients: Int { limits.withLock { $0.clients } }
    var queueLimit: Int { limits.withLock { $0.queue } }
    let policy: Mutex<AccessPolicy>
    /// Connections served, in all and by uid.
    private let slots = Mutex<(total: Int, byUser: [UInt32: Int])>((0, [:]))
    /// Slots one uid can never take: a flood from one user (a POS app in a reconnect loop)
    /// leaves room for the others.
    static let reservedForOthers = 4
    private let nextID = Atomic<Int>(0)
    /// Open client channels, to close at shutdown.
    private let open = Mutex<[Int: any Channel]>([:])

    /// Every line sent, for the suite's schema check (nil outside tests).
    let messageLog: MessageLog?

    init(hub: ReaderHub, configuration: DaemonConfiguration, logger: Logger, messageLog: MessageLog? = nil) {
        self.messageLog = messageLog
        self.hub = hub
        self.logger = logger
        limits = Mutex((configuration.maxClients, configuration.clientQueueBytes))
        policy = Mutex(AccessPolicy(configuration: configuration))
    }

    /// Closes every client connection (shutdown, after the last messages had their moment).
    func closeAll() {
        let channels = open.withLock { all -> [any Channel] in
            let list = Array(all.values)
            all.removeAll()
            return list
        }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Applies what can change while clients are connected: who may connect and the limits.
    func reload(_ configuration: DaemonConfiguration) {
        policy.withLock { $0 = AccessPolicy(configuration: configuration) }
        limits.withLock { $0 = (configuration.maxClients, configuration.clientQueueBytes) }
    }

    typealias Connection = NIOAsyncChannel<LineEvent, ByteBuffer>

    /// Binds `path` (or adopts systemd's `passed` socket) and returns the listening channel.
    func listen(path: String, passed: Int32?, group: String) async throws -> NIOAsyncChannel<Connection, Never> {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 64)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<Connection> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LineDecoder(maximum: PosminiProtocol.maximumLine)))
                return try Connection(wrappingChannelSynchronously: channel)
            }
        }
        if let passed {
            return try await bootstrap.bind(passed, childChannelInitializer: initializer)
        }
        // Created here: mode 0660 from this umask at bind(), and the configured group. Nothing
        // goes by path after bind() (a chmod or chown there follows a symlink renamed over the
        // socket), and fchmod on a socket's descriptor would not change the file connect() checks.
        // The group is set through the directory's descriptor on the name itself. The socket's
        // directory should be writable by the daemon only: whoever can write it can replace the
        // socket with one of their own.
        let previous = umask(0o117)
        defer { umask(previous) }
        let server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true,
                                              childChannelInitializer: initializer)
        if let gid = AccessPolicy.gid(group) {
            do {
                try FileRules.setSocketGroup(path, to: gid)
            } catch {
                logger.warning("cannot give \(path) to group \(group): \(error)")
            }
        } else {
            logger.warning("socket group '\(group)' does not exist: \(path) stays in the daemon's group")
        }
        return server
    }

    /// Serves until the listening channel closes.
    func serve(_ server: NIOAsyncChannel<Connection, Never>) async throws {
        try await withThrowingDiscardingTaskGroup { group in
            try await server.executeThenClose { inbound in
                for try await connection in inbound {
                    group.addTask { await self.handle(connection) }
                }
            }
        }
    }

    /// `struct ucred` as the kernel lays it out (pid_t, uid_t, gid_t).
    struct PeerCredentials: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// SO_PEERCRED (Linux): who is at the other end of a Unix socket, as of connect().
    static let peerCredentialsOption: Int32 = 17
    /// SO_PEERGROUPS (Linux 4.13): the peer's supplementary groups, as of connect().
    static let peerGroupsOption: Int32 = 59

    /// Room for 256 supplementary groups. The kernel writes them sorted from the start and NIO
    /// zero-fills the buffer, so gid 0 cannot be told from padding: the admin group is never gid
    /// 0 (the configuration refuses it). A process in more groups gets ERANGE: no groups.
    struct PeerGroups {
        var gids: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                   UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)

        var list: [UInt32] {
            withUnsafeBytes(of: gids) { Array($0.bindMemory(to: UInt32.self)) }.filter { $0 != 0 }
        }
    }

    private func credentials(_ channel: any Channel) async -> PeerCredentials? {
        guard let provider = channel as? any SocketOptionProvider else { return nil }
        let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SocketServer.peerCredentialsOption))
        return try? await future.get()
    }

    private func peerGroups(_ channel: any Channel) async -> [UInt32] {
        guard let provider = channel as? any SocketOptionProvider else { return [] }
        let future: EventLoopFuture<PeerGroups> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SocketServer.peerGroupsOption))
        return (try? await future.get())?.list ?? []
    }

    /// Why a client of `uid` cannot have a slot now (nil: it has one, to give back with `leave`).
    private func take(uid: UInt32, maxClients: Int) -> ProtocolError? {
        slots.withLock { slots in
            guard slots.total < maxClients else {
                return ProtocolError("too_many_clients", "the daemon serves at most \(maxClients) clients at once")
            }
            let perUser = max(1, maxClients - Self.reservedForOthers)
            guard slots.byUser[uid, default: 0] < perUser else {
                return ProtocolError("too_many_for_user", "uid \(uid) already has \(perUser) connections, the most one user may hold; close one")
            }
            slots.total += 1
            slots.byUser[uid, default: 0] += 1
            return nil
        }
    }

    private func leave(uid: UInt32) {
        slots.withLock { slots in
            slots.total -= 1
            slots.byUser[uid, default: 1] -= 1
            if slots.byUser[uid] == 0 { slots.byUser[uid] = nil }
        }
    }

    private func handle(_ connection: Connection) async {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (maxClients, queueLimit) = limits.withLock { $0 }
        let peer = await credentials(connection.channel)
        let groups = await peerGroups(connection.channel)
        let served = Mutex<ClientConnection?>(nil)
        open.withLock { $0[id] = connection.channel }
        defer { open.withLock { $0[id] = nil } }
        try? await connection.executeThenClose { inbound, outbound in
            func refuse(_ error: ProtocolError) async throws {
                // Counted with the requests refused: an operator sees clients turned away.
                await hub.countRefusal(error.code)
                messageLog?.record(error.json.text + "\n")
                try await outbound.write(ByteBuffer(string: error.json.text + "\n"))
            }
            guard let peer else {
                logger.warning("client \(id): no peer credentials; refused")
                try await refuse(ProtocolError("access_denied", "the daemon cannot tell who you are"))
                return
            }
            // Admins may connect whatever the socket's group: diagnose runs as one.
            guard policy.withLock({ $0.allows(uid: peer.uid, gid: peer.gid) || $0.isAdmin(uid: peer.uid, gid: peer.gid, groups: groups) }) else {
                logger.notice("client \(id) refused: uid \(peer.uid) gid \(peer.gid) pid \(peer.pid) is not allowed")
                try await refuse(ProtocolError("access_denied", "uid \(peer.uid) may not use posminid: ask for membership of its group"))
                return
            }
            if let full = take(uid: peer.uid, maxClients: maxClients) {
                logger.warning("client \(id) refused (\(full.code)): uid \(peer.uid) pid \(peer.pid)")
                try await refuse(full)
                return
            }
            defer { leave(uid: peer.uid) }
            let admin = policy.withLock { $0.isAdmin(uid: peer.uid, gid: peer.gid, groups: groups) }
            logger.info("client \(id) connected: uid \(peer.uid) pid \(peer.pid)\(admin ? " (admin)" : "")")
            let client = ClientConnection(id: id, peer: ClientPeer(uid: peer.uid, admin: admin), channel: connection.channel, limit: queueLimit, log: messageLog)
            served.withLock { $0 = client }
            let greeting = await hub.connect(client)
            for message in greeting { client.send(message) }
            if greeting.first?.kind == .error {
                // Refused (the daemon is stopping): the one line, then the connection closes.
                client.finish()
                for await line in client.stream { try await outbound.write(ByteBuffer(string: line)) }
                return
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await line in client.stream {
                        try await outbound.write(ByteBuffer(string: line))
                        client.written(line)
                    }
                }
                reading: for try await event in inbound {
                    switch event {
                    case .tooLong:
                        await hub.countRefusal("line_too_long")
                        client.send(.error(ProtocolError("line_too_long", "a request line may be at most \(PosminiProtocol.maximumLine) bytes; closing")))
                        break reading
                    case .line(let bytes):
                        if bytes.isEmpty { continue }
                        let (requestID, parsed) = Request.parseLine(bytes)
                        switch parsed {
                        case .success(let request):
                            for reply in await hub.handle(request, from: id) { client.send(reply, id: requestID) }
                        case .failure(let error):
                            await hub.countRefusal(error.code)
                            client.send(.error(error), id: requestID)
                        }
                    }
                    if client.overflowed.load(ordering: .relaxed) { break reading }
                }
                client.finish()
                try await group.next()
                group.cancelAll()
            }
        }
        await hub.disconnect(id)
        guard let client = served.withLock({ $0 }) else { return }
        if client.overflowed.load(ordering: .relaxed) {
            logger.warning("client \(id) disconnected: it left more than \(queueLimit) bytes unread")
        } else {
            logger.info("client \(id) disconnected")
        }
    }
}
