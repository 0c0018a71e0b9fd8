public import Magstripe
public import DUKPT
import PosminiSystem
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// `/etc/posminid/posminid.conf`: `key = value` lines, `#` comments, a repeated key for a list.
/// No file means the built-in defaults. An unknown key or a bad value refuses the whole file,
/// naming the file, the line and what is wrong.
public struct DaemonConfiguration: Sendable, Hashable {
    public var socketPath = "/run/posmini.sock"
    /// Group of the socket file (mode 0660) and the group allowed to connect.
    public var socketGroup = "posmini"
    /// Users and groups (names or numbers) allowed to connect besides root and `socketGroup`.
    public var allowUsers: [String] = []
    public var allowGroups: [String] = []
    /// The group whose members are admins besides root (may `release` readers for diagnose and
    /// change anyone's bindings); nil: root only.
    public var adminGroup: String?
    /// ALSA capture devices read from start-up (readers that udev announces come on their own).
    public var devices: [String] = []
    public var rate = 44_100
    public var maskFirst = 6
    public var maskLast = 4
    /// Longest (and default) arm, seconds.
    public var armTimeout = 120.0
    public var maxClients = 32
    /// Bytes a client may leave unread before it is disconnected.
    public var clientQueueBytes = 256 * 1024
    public var logLevel = "info"
    public var realTimePriority: Int32?
    public var stateDirectory = "/var/lib/posminid"
    /// DUKPT scheme; nil: the key file's (AES for the test key).
    public var scheme: DUKPTScheme?
    /// The initial-key file when there is no systemd credential.
    public var keyFile: String?
    /// A card without a payment track (loyalty, gift, access) reaches the arming client with its
    /// tracks in clear (`clear_non_payment = true`); off by default.
    public var clearNonPayment = false
    /// Where the metrics go for node_exporter's textfile collector (`metrics_textfile`, a path
    /// ending in `.prom`; nil: nowhere), and how often they are rewritten, seconds.
    public var metricsTextfile: String?
    public var metricsInterval = 15

    public init() {}

    public var maskPolicy: MaskPolicy { MaskPolicy(keepFirst: maskFirst, keepLast: maskLast) }

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var file: String
        public var line: Int
        public var message: String
        public var description: String { line > 0 ? "\(file):\(line): \(message)" : "\(file): \(message)" }
    }

    /// Reads `path`; a missing file gives the defaults only when `optional`.
    public static func load(_ path: String, optional: Bool) throws(Failure) -> DaemonConfiguration {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path, limit: 1 << 20)
        } catch {
            if optional && error.errno == ENOENT { return DaemonConfiguration() }
            throw Failure(file: path, line: 0, message: "cannot read: \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Failure(file: path, line: 0, message: "not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(Failure) -> DaemonConfiguration {
        var c = DaemonConfiguration()
        var seen: Set<String> = []
        let bytes = Array(text.utf8)
        let entries: [KeyValueText.Entry]
        do {
            entries = try KeyValueText.entries(bytes, comments: .anywhere)
        } catch {
            var line = Substring(text.split(separator: "\n", omittingEmptySubsequences: false)[error.line - 1])
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            throw Failure(file: file, line: error.line, message: "\(error.message), found '\(line.trimmingWhitespace())'")
        }
        for entry in entries {
            let number = entry.line
            func fail(_ message: String) -> Failure { Failure(file: file, line: number, message: message) }
            let key = KeyValueText.string(bytes, entry.name)
            let value = KeyValueText.string(bytes, entry.value)
            guard !value.isEmpty else { throw fail("'\(key)' has no value") }
            let repeatable: Set<String> = ["device", "allow_user", "allow_group"]
            if !repeatable.contains(key) {
                guard !seen.contains(key) else { throw fail("'\(key)' is set twice") }
                seen.insert(key)
            }
            func integer(_ range: ClosedRange<Int>) throws(Failure) -> Int {
                guard let n = Int(value), range.contains(n) else {
                    throw fail("'\(key)' must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(value)'")
                }
                return n
            }
            func name() throws(Failure) -> String {
                let ok = value.utf8.allSatisfy { b in
                    (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2D || b == 0x5F || b == 0x2E
                }
                guard ok, value.utf8.count <= 32 else { throw fail("'\(key)' must be a user or group name or number, not '\(value)'") }
                return value
            }
            switch key {
            case "socket":
                guard value.hasPrefix("/") else { throw fail("'socket' must be an absolute path, not '\(value)'") }
                c.socketPath = value
            case "socket_group": c.socketGroup = try name()
            case "allow_user": c.allowUsers.append(try name())
            case "allow_group": c.allowGroups.append(try name())
            case "admin_group":
                let group = try name()
                // gid 0 would make a process with no supplementary groups an admin: the kernel's
                // SO_PEERGROUPS list is read from a zero-filled buffer (SocketServer).
                guard group != "0" && group != "root" else {
                    throw fail("'admin_group' cannot be root's group: root is an admin already; name the technicians' group")
                }
                c.adminGroup = group
            case "device": c.devices.append(value)
            case "rate": c.rate = try integer(SampleRate.supported)
            case "mask_first": c.maskFirst = try integer(0...8)
            case "mask_last": c.maskLast = try integer(0...4)
            case "arm_timeout": c.armTimeout = Double(try integer(1...120))
            case "max_clients": c.maxClients = try integer(1...1_024)
            case "client_queue_kib": c.clientQueueBytes = try integer(16...16_384) * 1024
            case "clear_non_payment":
                switch value {
                case "true", "yes", "on": c.clearNonPayment = true
                case "false", "no", "off": c.clearNonPayment = false
                default: throw fail("'clear_non_payment' must be true or false, not '\(value)'")
                }
            case "metrics_textfile":
                guard value.hasPrefix("/"), value.hasSuffix(".prom"), !value.hasSuffix("/.prom") else {
                    throw fail("'metrics_textfile' must be an absolute path ending in .prom (node_exporter reads only those), not '\(value)'")
                }
                c.metricsTextfile = value
            case "metrics_interval": c.metricsInterval = try integer(1...3_600)
            case "log_level":
                guard logLevels.contains(value) else {
                    throw fail("'log_level' must be one of \(logLevels.joined(separator: ", ")), not '\(value)'")
                }
                c.logLevel = value
            case "realtime_priority": c.realTimePriority = Int32(try integer(1...99))
            case "state_directory":
                guard value.hasPrefix("/") else { throw fail("'state_directory' must be an absolute path, not '\(value)'") }
                c.stateDirectory = value
            case "scheme":
                guard let scheme = DUKPTScheme(rawValue: value) else {
                    throw fail("'scheme' must be aes128-dukpt or tdes-dukpt, not '\(value)'")
                }
                c.scheme = scheme
            case "key_file":
                guard value.hasPrefix("/") else { throw fail("'key_file' must be an absolute path, not '\(value)'") }
                c.keyFile = value
            default:
                throw fail("unknown key '\(key)'")
            }
        }
        return c
    }
}

/// Where the initial key is (the daemon reads it; `--diagnose` checks its permissions).
public enum KeyFileLocation {
    /// systemd's credential name (`LoadCredential=posminid.ik:…`).
    public static let credentialName = "posminid.ik"
    public static let defaultPath = "/etc/posminid/ik"

    /// Where the key is: the systemd credential if there is one, else `path`.
    public static func locate(configured path: String, credentialsDirectory: String?) -> String {
        if let directory = credentialsDirectory {
            let credential = directory + "/" + credentialName
            if (try? FileBytes.permissions(credential)) != nil { return credential }
        }
        return path
    }
}

extension Substring {
    /// Without leading and trailing blanks (the `key = value` files' rule).
    public func trimmingWhitespace() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return s
    }
}
