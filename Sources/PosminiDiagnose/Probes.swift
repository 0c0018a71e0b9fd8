import PosminiSystem
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// What diagnose measures on the machine, kept apart from the judging (`Checks`): each probe
/// touches the system and returns plain figures; a check takes figures and gives verdicts, and
/// is tested without the system.

/// The modes and owners of what posminid needs to open.
struct PermissionsProbe: Sendable, Hashable {
    /// The user diagnose runs as.
    var user: String
    /// The device's control and PCM nodes (nil: not a sound card's device), and those of them
    /// this user may not open.
    var deviceNodes: [String]?
    var refusedNodes: [String] = []
    /// A path, its mode bits (nil: it does not exist) and, for the socket, its group.
    struct Entry: Sendable, Hashable {
        var path: String
        var mode: UInt32?
        var group: String?
    }
    var socket: Entry
    var stateDirectory: Entry
    var keyFile: Entry

    static func measure(cardNumber: Int?, device: String, socket: String, stateDirectory: String, keyFile: String) -> PermissionsProbe {
        func entry(_ path: String, group: Bool = false) -> Entry {
            guard let info = try? FileBytes.permissions(path) else { return Entry(path: path) }
            return Entry(path: path, mode: UInt32(info.mode & 0o777), group: group ? groupOf(path) : nil)
        }
        var probe = PermissionsProbe(user: userName(), socket: entry(socket, group: true),
                                     stateDirectory: entry(stateDirectory), keyFile: entry(keyFile))
        if let cardNumber {
            let nodes = ["/dev/snd/controlC\(cardNumber)", "/dev/snd/pcmC\(cardNumber)D\(CardReference.deviceNumber(in: device))c"]
            probe.deviceNodes = nodes
            probe.refusedNodes = nodes.filter { node in
                if case .failure(let error) = SystemCall.attempt("access", { access(node, R_OK | W_OK) }) { return error.errno != ENOENT }
                return false
            }
        }
        return probe
    }

    static func userName() -> String {
        FileBytes.userName(FileBytes.effectiveUserID) ?? "uid \(FileBytes.effectiveUserID)"
    }

    static func groupOf(_ path: String) -> String? {
        var info = stat()
        guard case .success = SystemCall.attempt("stat", { stat(path, &info) }) else { return nil }
        if let entry = getgrgid(info.st_gid), let name = entry.pointee.gr_name { return String(cString: name) }
        return String(info.st_gid)
    }
}
