import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

/// The few lines of systemd's protocols the daemon speaks, without libsystemd: readiness and
/// watchdog datagrams to `$NOTIFY_SOCKET` (sd_notify(3)) and sockets passed from a socket unit
/// (sd_listen_fds(3)).
public enum Systemd {
    /// Sends `state` ("READY=1", "STATUS=…", "WATCHDOG=1", "STOPPING=1") to `$NOTIFY_SOCKET`.
    /// Returns false when there is no such socket or the send failed (never fatal).
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        guard let raw = getenv("NOTIFY_SOCKET") else { return false }
        let path = String(cString: raw)
        guard path.hasPrefix("/") || path.hasPrefix("@") else { return false }
        guard let (unixAddress, length) = unixSocketAddress(path, abstractAt: true) else { return false }
        var address = unixAddress
        guard let fd = try? SystemCall.retrying("socket", { socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }) else {
            return false
        }
        defer { SystemCall.close(fd) }
        let message = Array(state.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                message.withUnsafeBytes { raw in
                    try? SystemCall.retrying("sendto") { sendto(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL), sa, length) }
                }
            }
        }
        return sent == message.count
    }

    /// The watchdog interval systemd expects pings at (half of `$WATCHDOG_USEC`), when it is
    /// meant for this process.
    public static var watchdogInterval: Double? {
        guard let raw = getenv("WATCHDOG_USEC"), let usec = Double(String(cString: raw)), usec > 0 else { return nil }
        if let pid = getenv("WATCHDOG_PID"), Int32(String(cString: pid)) != getpid() { return nil }
        return usec / 1e6 / 2
    }

    public struct ListenError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// The listening socket systemd passed (fd 3), when `LISTEN_PID` is this process and
    /// `LISTEN_FDS` is at least 1; checked to be a listening AF_UNIX stream socket. The
    /// variables are removed so that children do not take the socket for theirs.
    public static func passedSocket() throws(ListenError) -> Int32? {
        guard let pidText = getenv("LISTEN_PID"), let countText = getenv("LISTEN_FDS") else { return nil }
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard Int32(String(cString: pidText)) == getpid() else { return nil }
        guard let count = Int(String(cString: countText)), count >= 1 else { return nil }
        let fd: Int32 = 3
        // Raw calls, not `SystemCall`: fd 3 may not be open at all (a unit that claims a socket it
        // did not pass), and EBADF here is a fact about the service's setup, not a bug to stop on.
        var type: Int32 = 0, listening: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) == 0 else {
            throw ListenError(message: "systemd passed fd 3, but it is not a socket (\(String(cString: strerror(errno))))")
        }
        size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening == 1,
              type == Int32(SOCK_STREAM.rawValue) else {
            throw ListenError(message: "systemd passed fd 3, but it is not a listening stream socket: use ListenStream= in the socket unit")
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0, address.ss_family == sa_family_t(AF_UNIX) else {
            throw ListenError(message: "systemd passed fd 3, but it is not an AF_UNIX socket: ListenStream= must be a path")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }
}

