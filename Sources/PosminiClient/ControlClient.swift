public import PosminiProtocol
import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

/// A blocking client of the daemon's socket, for `posminictl` and tests: connect, send one
/// request line, read message lines.
public final class ControlClient {
    private var fd: Int32
    private var buffer: [UInt8] = []

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        /// The errno of a failed connect() (EACCES: the socket file's mode and group refused
        /// this user before the daemon saw it), else 0.
        public var code: Int32 = 0
    }

    public init(path: String) throws(Failure) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket(): \(String(cString: strerror(errno)))") }
        guard let (unixAddress, length) = unixSocketAddress(path) else {
            Glibc.close(fd)
            throw Failure(description: "socket path too long: \(path)")
        }
        var address = unixAddress
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        guard rc == 0 else {
            let code = errno
            Glibc.close(fd)
            var message = "cannot connect to \(path): \(String(cString: strerror(code)))"
            if code == ENOENT || code == ECONNREFUSED { message += " (is posminid running? `systemctl status posminid.socket`)" }
            if code == EACCES { message += " (you need to be in the socket's group, usually 'posmini')" }
            throw Failure(description: message, code: code)
        }
    }

    deinit { close() }

    /// Hangs up (idempotent).
    public func close() {
        guard fd >= 0 else { return }
        Glibc.close(fd)
        fd = -1
    }

    public func send(_ request: JSONValue) throws(Failure) {
        try sendRaw(Array((request.text + "\n").utf8))
    }

    /// Sends bytes as they are (tests send malformed lines this way). With `nonBlocking`, fails
    /// instead of waiting when the socket's buffer is full.
    public func sendRaw(_ bytes: [UInt8], nonBlocking: Bool = false) throws(Failure) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL) | (nonBlocking ? Int32(MSG_DONTWAIT) : 0))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "write: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// The next message, or nil when the daemon closed the connection (or `timeout` seconds
    /// passed without one).
    public func next(timeout: Double? = nil) throws(Failure) -> JSONValue? {
        let deadline = timeout.map { monotonicSeconds() + $0 }
        while true {
            if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                do { return try JSONValue.parse(line) } catch { throw Failure(description: "the daemon sent a line that is not JSON") }
            }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let wait = deadline.map { Int32(max(0, ($0 - monotonicSeconds()) * 1_000)) } ?? -1
            let ready = poll(&entry, 1, wait)
            if ready == 0 { return nil }
            if ready < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "poll: \(String(cString: strerror(errno)))")
            }
            var chunk = [UInt8](repeating: 0, count: 65_536)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { return nil }
            buffer += chunk[0..<n]
        }
    }
}

/// One readable line for a message (`posminictl watch`, `arm`).
public func describeMessage(_ m: JSONValue) -> String {
    let kind = m["class"]?.stringValue ?? "?"
    func s(_ key: String) -> String { m[key]?.stringValue ?? "" }
    switch kind {
    case "CARD":
        var parts = ["card on \(s("reader"))", s("card_type")]
        if !s("masked_pan").isEmpty { parts.append(s("masked_pan")) }
        if !s("expiry").isEmpty { parts.append("expires \(s("expiry"))") }
        if !s("name").isEmpty { parts.append(s("name")) }
        return parts.joined(separator: ", ")
    case "SWIPE_FAILED": return "swipe on \(s("reader")) failed: \(s("reason")); swipe again"
    case "SWIPE": return "swipe on \(s("reader")): " + ((m["read"]?.boolValue ?? false) ? "read" : "failed (\(s("reason")))")
    case "SWIPE_IGNORED": return "swipe on \(s("reader")) ignored: nobody armed it"
    case "READER":
        var text = "reader \(s("id")) (\(s("name"))): " + ((m["present"]?.boolValue ?? false) ? "present" : "gone")
            + ((m["capturing"]?.boolValue ?? false) ? ", capturing" : "") + ((m["bound"]?.boolValue ?? false) ? ", bound" : "")
        if s("jack") == "in" || s("jack") == "out" { text += ", jack \(s("jack"))" }
        if let flaps = m["jack_flaps"]?.numberValue, flaps > 0 { text += ", jack flapped \(Int(flaps))× (loose jack?)" }
        if !s("error").isEmpty { text += ", not capturing: \(s("error"))" }
        return text
    case "ARMED": return "armed \(s("reader")) for \(Int(m["timeout_s"]?.numberValue ?? 0)) s: swipe the card"
    case "TIMEOUT", "CANCELLED", "READER_REMOVED": return "\(kind.lowercased().replacingUnderscores()) on \(s("reader"))"
    case "ERROR": return "error \(s("code")): \(s("message"))"
    default: return m.text
    }
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}
