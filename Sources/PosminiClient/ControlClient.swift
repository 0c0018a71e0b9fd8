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
        switch SystemCall.attempt("socket", { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }) {
        case .success(let opened): fd = opened
        case .failure(let error): throw Failure(description: error.description)
        }
        // On a failure below, `close()` (so that deinit, which runs for a class whose stored
        // properties are all set, does not close the number again: by then another thread may
        // have been given it).
        guard let (unixAddress, length) = unixSocketAddress(path) else {
            close()
            throw Failure(description: "socket path too long: \(path)")
        }
        var address = unixAddress
        // Not retried on EINTR (a connect that was interrupted goes on in the kernel; a second
        // one would fail with EALREADY): a Unix socket's connect does not wait anyway.
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        guard rc == 0 else {
            let code = errno
            close()
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
        SystemCall.close(fd)
        fd = -1
    }

    /// Sends one request.
    public func send(_ request: Request) throws(Failure) { try send(request.json) }

    /// The next message, typed: nil when the connection closed or `timeout` passed; a message
    /// that is not one of the protocol's is a failure naming what is wrong with it.
    public func nextReply(timeout: Double? = nil) throws(Failure) -> Reply? {
        guard let message = try next(timeout: timeout) else { return nil }
        do {
            return try Reply.parse(message)
        } catch {
            throw Failure(description: "posminid sent a message this client cannot read (\(error.message)): \(message.text.prefix(200))")
        }
    }

    public func send(_ request: JSONValue) throws(Failure) {
        try sendRaw(Array((request.text + "\n").utf8))
    }

    /// Sends bytes as they are (tests send malformed lines this way). With `nonBlocking`, fails
    /// instead of waiting when the socket's buffer is full.
    public func sendRaw(_ bytes: [UInt8], nonBlocking: Bool = false) throws(Failure) {
        var sent = 0
        let flags = Int32(MSG_NOSIGNAL) | (nonBlocking ? Int32(MSG_DONTWAIT) : 0)
        while sent < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                Result { () throws(SystemCallError) in
                    try SystemCall.retrying("send") { Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, flags) }
                }
            }
            switch result {
            case .success(let n): sent += n
            case .failure(let error): throw Failure(description: error.description)
            }
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
            var chunk: [UInt8] = []
            let n: Int
            do {
                // An interrupted wait is waited again for what is left of the timeout.
                let ready = try SystemCall.retrying("poll") {
                    poll(&entry, 1, deadline.map { Int32(max(0, ($0 - monotonicSeconds()) * 1_000)) } ?? -1)
                }
                if ready == 0 { return nil }
                chunk = [UInt8](repeating: 0, count: 65_536)
                n = try chunk.withUnsafeMutableBytes { raw in
                    Result { () throws(SystemCallError) in try SystemCall.readSome(fd, into: raw) }
                }.get()
            } catch {
                throw Failure(description: error.description)
            }
            if n == 0 { return nil }
            buffer += chunk[0..<n]
        }
    }
}

/// One readable line for a message (`posminictl watch`, `arm`); a message this client cannot
/// read is shown as it came.
public func describeMessage(_ m: JSONValue) -> String {
    guard let reply = try? Reply.parse(m) else { return m.text }
    return describeReply(reply)
}

/// One readable line for a reply.
public func describeReply(_ reply: Reply) -> String {
    switch reply {
    case .card(let card):
        var parts = ["card on \(card.reader)", card.cardType.rawValue]
        if let pan = card.maskedPAN { parts.append(pan) }
        if let expiry = card.expiry { parts.append("expires \(expiry)") }
        if let name = card.name { parts.append(name) }
        return parts.joined(separator: ", ")
    case .swipeFailed(let failure): return "swipe on \(failure.reader) failed: \(failure.reason); swipe again"
    case .swipe(let swipe): return "swipe on \(swipe.reader): " + (swipe.read ? "read" : "failed (\(swipe.reason ?? "unreadable"))")
    case .swipeIgnored(let reader, _, _): return "swipe on \(reader) ignored: nobody armed it"
    case .reader(let r):
        var text = "reader \(r.id) (\(r.name)): " + (r.present ? "present" : "gone")
            + (r.capturing ? ", capturing" : "") + (r.bound ? ", bound" : "")
        if r.jack == .plugged || r.jack == .unplugged { text += ", jack \(r.jack.rawValue)" }
        if r.jackFlaps > 0 { text += ", jack flapped \(r.jackFlaps)× (loose jack?)" }
        if let error = r.error { text += ", not capturing: \(error)" }
        return text
    case .armed(let reader, let seconds, _): return "armed \(reader) for \(describeNumber(seconds)) s: swipe the card"
    case .armEnded(let ending, let reader, _, _, let reason):
        var text = "\(ending.rawValue.lowercased().replacingUnderscores()) on \(reader)"
        if reason == .shutdown { text += ": posminid is stopping" }
        return text
    case .error(let error, _, _): return "error \(error.code): \(error.message)"
    case .version(let release, let major, let minor, _): return "posminid \(release), protocol \(major).\(minor)"
    case .readers(let list):
        return list.isEmpty ? "no readers" : list.map { describeReply(.reader($0)) }.joined(separator: "\n")
    case .watch(let enable): return enable ? "watching the readers" : "no longer watching"
    case .released(let reader, let seconds): return "\(reader) released for \(describeNumber(seconds)) s"
    case .bound(let reader): return "\(reader) bound"
    case .unbound(let reader): return "\(reader) unbound"
    case .simulated(let reader, let action, let card):
        return "\(reader): " + (action == "swipe" ? "swiped \(card ?? "the next card")" : action.replacingUnderscores())
    case .status(let status):
        return "\(status.readers.count) readers, " + describeCounters(status) + "; " + describeEncryption(status.encryption)
    case .metrics(let text):
        return "metrics: \(text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count) samples"
    }
}

/// A number as the protocol writes it (0.5 stays 0.5, 30.0 is 30): a timeout shown as given.
func describeNumber(_ x: Double) -> String { JSONValue.number(x).text }

/// The armed state and counters of a STATUS, one line (`posminictl status`).
public func describeCounters(_ status: StatusReport) -> String {
    let c = status.counters
    return "armed: \(status.armed), clients: \(status.clients), swipes: \(c.swipes) (\(c.goodReads) read), "
        + "xruns: \(c.xruns), audio gaps: \(c.audioGaps), up \(Int(status.uptimeSeconds)) s"
}

/// The key in use, as `posminictl status` shows it (never the key).
public func describeEncryption(_ encryption: StatusReport.EncryptionStatus?) -> String {
    guard let e = encryption else { return "encryption: none (no key file)" }
    var text = "encryption: \(e.scheme), key \(e.keyID)"
    if e.testKey { text += ", TEST KEY (published: for testing only, never for real cards)" }
    if e.exhausted { text += ", exhausted" } else if let next = e.nextCounter { text += ", next counter \(next)" }
    return text
}

extension String {
    func replacingUnderscores() -> String { String(map { $0 == "_" ? " " : $0 }) }
}
