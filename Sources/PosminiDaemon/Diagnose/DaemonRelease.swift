public import PosminiProtocol

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
        func same(_ reader: JSONValue) -> Bool {
            if reader["device"]?.stringValue == device || reader["id"]?.stringValue == device { return true }
            if let cardID, let card = reader["card"]?.stringValue { return card == cardID }
            return false
        }
        guard let client = try? ControlClient(path: socket),
              (try? client.next(timeout: 2))??["class"] == "VERSION",
              let readers = (try? client.next(timeout: 2))??["readers"]?.arrayValue,
              let reader = readers.first(where: same),
              let id = reader["id"]?.stringValue else { return nil }
        self.client = client
        readerID = id
        jackFlaps = reader["jack_flaps"]?.numberValue.map { Int($0) }
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
        guard (try? client.send(["cmd": "release", "reader": .string(readerID), "seconds": .number(seconds.rounded(.up))])) != nil else { return .noAnswer }
        while let m = try? client.next(timeout: 5) {
            if m["class"] == "RELEASED" {
                released = true
                return .released
            }
            if m["class"] == "ERROR" {
                return .refused(code: m["code"]?.stringValue ?? "?", message: m["message"]?.stringValue ?? "")
            }
        }
        return .noAnswer
    }

    /// Hands the device back now.
    func reclaim() {
        guard released else { return }
        try? client.send(["cmd": "release", "reader": .string(readerID), "seconds": 0])
        _ = try? client.next(timeout: 2)
        released = false
    }
}
