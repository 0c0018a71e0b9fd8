import PosminiProtocol
import PosminiClient
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// The running daemon, asked to let go of the diagnosed device for a while (`release`), and
/// to take it back at the end.
final class DaemonRelease {
    let client: ControlClient
    let readerID: String
    let jackFlaps: Int?
    private var released = false

    /// Connects when a daemon answers on `socket` and has a reader on `device` (by its name,
    /// or on the same card: `hw:CARD=Device,DEV=0` and the daemon's `hw:1,0`).
    init?(socket: String, device: String, cardID: String? = nil) {
        func same(_ reader: ReaderInfo) -> Bool {
            if reader.device == device || reader.id == device { return true }
            if let cardID, let card = reader.card { return card == cardID }
            return false
        }
        guard let client = try? ControlClient(path: socket),
              case .version? = try? client.nextReply(timeout: 2),
              case .readers(let readers)? = try? client.nextReply(timeout: 2),
              let reader = readers.first(where: same) else { return nil }
        self.client = client
        readerID = reader.id
        jackFlaps = reader.jackFlaps
    }

    /// What the daemon said to `release`.
    enum Outcome {
        case released
        /// ERROR with its code and message (`not_permitted`: the caller is no admin).
        case refused(code: String, message: String)
        case noAnswer
    }

    /// Asks for the device for `seconds`. The connection stays open while the check runs: the
    /// daemon ends a release when the connection that asked for it closes.
    func release(seconds: Double) -> Outcome {
        guard (try? client.send(Request.release(reader: readerID, seconds: seconds.rounded(.up)))) != nil else { return .noAnswer }
        while let m = try? client.nextReply(timeout: 5) {
            switch m {
            case .released:
                released = true
                return .released
            case .error(let error, _, _):
                return .refused(code: error.code, message: error.message)
            default:
                continue
            }
        }
        return .noAnswer
    }

    /// Hands the device back now.
    func reclaim() {
        guard released else { return }
        try? client.send(Request.release(reader: readerID, seconds: 0))
        _ = try? client.next(timeout: 2)
        released = false
    }
}

/// Why the technician's process cannot talk to the daemon at all. The socket file (mode 660,
/// root and the socket's group) is checked by the kernel at connect(), before the daemon sees
/// who connects: being in admin_group, or allowed by allow_user or allow_group, does not help a
/// process outside the socket's group.
enum DaemonAccess {
    /// When connecting to `socket` is refused for this process (EACCES), what to report: the
    /// socket's group, which the user must join, named.
    static func refusal(socket: String, user: String) -> (value: String, advice: String)? {
        do {
            _ = try ControlClient(path: socket)
            return nil
        } catch {
            guard error.code == EACCES || error.code == EPERM else { return nil }
        }
        let group = PermissionsProbe.groupOf(socket) ?? "posmini"
        let mode = ((try? FileBytes.permissions(socket))??.mode).map { String($0 & 0o777, radix: 8) } ?? "?"
        return ("\(user) may not connect to \(socket) (mode \(mode), group \(group)): the daemon cannot be asked to release the reader",
                "the socket admits root and members of group '\(group)' only, whatever admin_group says: add the technician to it "
                + "(`sudo usermod -aG \(group) \(user)`, then log in again) as well as to admin_group, or run `sudo posminid --diagnose`")
    }
}
