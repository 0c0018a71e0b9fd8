/// posminid's socket protocol: message values, requests and errors, shared by the daemon, its
/// clients and the tests. Pure: no I/O.

/// The socket protocol: newline-delimited JSON, every message with a `class` (docs/PROTOCOL.md).
public enum PosminiProtocol {
    public static let major = 1
    public static let minor = 4
    public static let release = "0.6.0"
    /// The longest request line, bytes (the newline excluded).
    public static let maximumLine = 4_096
    /// The longest request `id`, bytes of UTF-8.
    public static let maximumRequestID = 64
    /// The longest `reader` or `reference`, bytes of UTF-8.
    public static let maximumName = 256
    /// What this daemon understands beyond protocol 1.0, for a client to check in VERSION
    /// before it relies on it (docs/PROTOCOL.md, Compatibility).
    public static let capabilities = ["cancel_reader", "metrics", "request_id", "simulate", "superseded", "too_late"]
    /// The longest arm, and the default, seconds (the merchant flow's limit).
    public static let maximumArm = 120.0
    /// The longest a reader may be released to diagnose, seconds.
    public static let maximumRelease = 900.0
}

/// A request from a client.
public enum Request: Sendable, Hashable {
    case watch(Bool)
    case arm(reader: String?, timeout: Double?, reference: String?)
    /// Ends the client's arm on `reader`, or all its arms.
    case cancel(reader: String?)
    case status
    /// The metrics in Prometheus's text format (`METRICS`).
    case metrics
    case bind(String)
    case unbind(String)
    /// Let go of a reader's device for `seconds` (diagnose), then open it again; 0 takes it back now.
    case release(reader: String, seconds: Double)
    /// The test mode's simulated reader (`posminid --test-key --simulate` only).
    case simulate(SimulateAction)
}

/// What `simulate` does to the simulated reader.
public enum SimulateAction: Sendable, Hashable {
    /// Plays a swipe of `card` (nil: the next card of the reader's rotation).
    case swipe(card: String?)
    /// The reader is pulled out (an arm on it ends with READER_REMOVED).
    case remove
    /// The reader is plugged in again.
    case insert
    /// The key behaves as used up until the daemon restarts (arms get key_exhausted).
    case exhaustKey

    /// The `action` field.
    public var name: String {
        switch self {
        case .swipe: "swipe"
        case .remove: "remove"
        case .insert: "insert"
        case .exhaustKey: "exhaust_key"
        }
    }
}

extension JSONValue {
    /// The object with the request `id` a request carries and its direct replies echo (the
    /// same value without one).
    func carrying(id: String?) -> JSONValue {
        guard let id, case .object(var fields) = self else { return self }
        fields["id"] = .string(id)
        return .object(fields)
    }
}

/// Why a request was refused: the `code` of the `ERROR` reply, and a message naming the problem.
public struct ProtocolError: Error, Sendable, Hashable {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The `ERROR` reply.
    public var json: JSONValue { Reply.error(self).json }
}

extension Request {
    /// The request as a client sends it (`Request.parse` reads it back).
    public var json: JSONValue {
        switch self {
        case .watch(let enable): return ["cmd": "watch", "enable": .bool(enable)]
        case .arm(let reader, let timeout, let reference):
            var f: [String: JSONValue] = ["cmd": "arm"]
            f["reader"] = reader.map(JSONValue.string)
            f["timeout_s"] = timeout.map(JSONValue.number)
            f["reference"] = reference.map(JSONValue.string)
            return .object(f)
        case .cancel(let reader):
            var f: [String: JSONValue] = ["cmd": "cancel"]
            f["reader"] = reader.map(JSONValue.string)
            return .object(f)
        case .status: return ["cmd": "status"]
        case .metrics: return ["cmd": "metrics"]
        case .bind(let reader): return ["cmd": "bind", "reader": .string(reader)]
        case .unbind(let reader): return ["cmd": "unbind", "reader": .string(reader)]
        case .release(let reader, let seconds): return ["cmd": "release", "reader": .string(reader), "seconds": .number(seconds)]
        case .simulate(let action):
            var f: [String: JSONValue] = ["cmd": "simulate", "action": .string(action.name)]
            if case .swipe(let card?) = action { f["card"] = .string(card) }
            return .object(f)
        }
    }

    /// The request with a request `id`, which the daemon's direct replies echo.
    public func json(id: String?) -> JSONValue { json.carrying(id: id) }

    /// Parses one request line (its `id`, if any, is passed over: `parseLine` gives it).
    public static func parse(_ line: [UInt8]) throws(ProtocolError) -> Request {
        try parseLine(line).request.get()
    }

    /// Parses one request line into its request, or why it is refused, and the request's `id`
    /// for the reply to echo: nil when it has none, or when the line is not a JSON object or its
    /// `id` is not a string of at most 64 bytes (that is refused too).
    public static func parseLine(_ line: [UInt8]) -> (id: String?, request: Result<Request, ProtocolError>) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(line)
        } catch {
            switch error {
            case .invalidUTF8: return (nil, .failure(ProtocolError("invalid_utf8", "the request is not valid UTF-8")))
            case .invalidJSON: return (nil, .failure(ProtocolError("invalid_json", "the request is not a JSON object on one line")))
            case .duplicateKey(let key):
                return (nil, .failure(ProtocolError("invalid_request", "\"\(key.utf8.count <= 64 ? key : String(key.prefix(64)) + "…")\" is given twice: name each field once")))
            }
        }
        guard case .object(let fields) = value else {
            return (nil, .failure(ProtocolError("invalid_request", "a request is a JSON object with \"cmd\"")))
        }
        var id: String?
        if let v = fields["id"], v != .null {
            guard let s = v.stringValue, s.utf8.count <= PosminiProtocol.maximumRequestID else {
                return (nil, .failure(ProtocolError("invalid_request", "\"id\" must be a string of at most \(PosminiProtocol.maximumRequestID) bytes")))
            }
            id = s
        }
        return (id, Result { () throws(ProtocolError) in try parse(fields) })
    }

    private static func parse(_ fields: [String: JSONValue]) throws(ProtocolError) -> Request {
        guard let command = fields["cmd"] else { throw ProtocolError("invalid_request", "the request has no \"cmd\"") }
        guard let name = command.stringValue else { throw ProtocolError("invalid_request", "\"cmd\" must be a string") }

        func string(_ key: String) throws(ProtocolError) -> String? {
            guard let v = fields[key], v != .null else { return nil }
            guard let s = v.stringValue else { throw ProtocolError("invalid_request", "\"\(key)\" must be a string") }
            guard s.utf8.count <= PosminiProtocol.maximumName else {
                throw ProtocolError("invalid_request", "\"\(key)\" is longer than \(PosminiProtocol.maximumName) bytes")
            }
            return s
        }
        func allowed(_ keys: Set<String>) throws(ProtocolError) {
            for key in fields.keys where key != "cmd" && key != "id" && !keys.contains(key) {
                throw ProtocolError("invalid_request", "\"\(name)\" takes no \"\(key)\"")
            }
        }

        switch name {
        case "watch":
            try allowed(["enable"])
            guard let v = fields["enable"] else { return .watch(true) }
            guard let enable = v.boolValue else { throw ProtocolError("invalid_request", "\"enable\" must be true or false") }
            return .watch(enable)
        case "arm":
            try allowed(["reader", "timeout_s", "reference"])
            var timeout: Double?
            if let v = fields["timeout_s"], v != .null {
                guard let t = v.numberValue, t.isFinite else { throw ProtocolError("invalid_request", "\"timeout_s\" must be a number of seconds") }
                guard t > 0, t <= PosminiProtocol.maximumArm else {
                    throw ProtocolError("invalid_timeout", "\"timeout_s\" must be more than 0 and at most \(Int(PosminiProtocol.maximumArm))")
                }
                timeout = t
            }
            return .arm(reader: try string("reader"), timeout: timeout, reference: try string("reference"))
        case "cancel":
            try allowed(["reader"])
            return .cancel(reader: try string("reader"))
        case "status":
            try allowed([])
            return .status
        case "metrics":
            try allowed([])
            return .metrics
        case "bind", "unbind":
            try allowed(["reader"])
            guard let reader = try string("reader") else { throw ProtocolError("invalid_request", "\"\(name)\" needs \"reader\"") }
            return name == "bind" ? .bind(reader) : .unbind(reader)
        case "release":
            try allowed(["reader", "seconds"])
            guard let reader = try string("reader") else { throw ProtocolError("invalid_request", "\"release\" needs \"reader\"") }
            guard let v = fields["seconds"], let seconds = v.numberValue, seconds.isFinite else {
                throw ProtocolError("invalid_request", "\"release\" needs \"seconds\", a number")
            }
            guard seconds >= 0, seconds <= PosminiProtocol.maximumRelease else {
                throw ProtocolError("invalid_request", "\"seconds\" must be from 0 to \(Int(PosminiProtocol.maximumRelease))")
            }
            return .release(reader: reader, seconds: seconds)
        case "simulate":
            try allowed(["action", "card"])
            let card = try string("card")
            switch try string("action") {
            case "swipe": return .simulate(.swipe(card: card))
            case let other:
                guard card == nil else { throw ProtocolError("invalid_request", "\"card\" goes with \"action\": \"swipe\" only") }
                switch other {
                case "remove": return .simulate(.remove)
                case "insert": return .simulate(.insert)
                case "exhaust_key": return .simulate(.exhaustKey)
                default: throw ProtocolError("invalid_request", "\"simulate\" needs \"action\": swipe, remove, insert or exhaust_key")
                }
            }
        default:
            throw ProtocolError("unknown_command", "unknown command \"\(name)\": use watch, arm, cancel, status, bind, unbind, release or simulate")
        }
    }
}


/// A reader's jack, as READERS and STATUS report it (`jack`).
public enum JackStatus: String, Sendable, Hashable, CaseIterable {
    /// A configured card's jack with a plug in it.
    case plugged = "in"
    /// A configured card's jack with nothing in it.
    case unplugged = "out"
    /// No jack to follow: a card without jack controls, or a dedicated reader adapter
    /// (plugging it is plugging the card).
    case noJack = "none"
    /// Not known yet, or a replay.
    case unknown
}

/// Where a reader comes from (`source`).
public enum ReaderSource: String, Sendable, Hashable, CaseIterable {
    /// A card the udev rules mark as a reader.
    case udev
    /// A device named in the configuration.
    case config
    /// A recording played as a reader (`--replay`).
    case replay
    /// The test mode's reader (`--simulate`).
    case simulator
}
