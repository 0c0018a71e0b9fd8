// Every reply to and from its JSON line: `json` writes what PROTOCOL.md documents, `parse`
// reads it back strictly (naming the field that is wrong) and tolerates fields a newer
// daemon adds.

// MARK: Writing

extension Reply {
    /// The message, as it goes on the socket (`json.text` plus a newline).
    public var json: JSONValue {
        var f: [String: JSONValue] = ["class": .string(messageClass)]
        switch self {
        case .version(let release, let major, let minor, let capabilities):
            f["release"] = .string(release)
            f["capabilities"] = .array(capabilities.map(JSONValue.string))
            f["proto_major"] = .number(Double(major))
            f["proto_minor"] = .number(Double(minor))
        case .readers(let readers):
            f["readers"] = .array(readers.map(\.json))
        case .reader(let info):
            return info.json
        case .watch(let enable):
            f["enable"] = .bool(enable)
        case .armed(let reader, let seconds, let reference):
            f["reader"] = .string(reader)
            f["timeout_s"] = .number(seconds)
            f["reference"] = reference.map(JSONValue.string)
        case .released(let reader, let seconds):
            f["reader"] = .string(reader)
            f["seconds"] = .number(seconds)
        case .bound(let reader), .unbound(let reader):
            f["reader"] = .string(reader)
        case .simulated(let reader, let action, let card):
            f["reader"] = .string(reader)
            f["action"] = .string(action)
            f["card"] = card.map(JSONValue.string)
        case .status(let status):
            status.write(into: &f)
        case .metrics(let text):
            f["text"] = .string(text)
        case .card(let card):
            card.write(into: &f)
        case .swipeFailed(let failure):
            f["reader"] = .string(failure.reader)
            f["reference"] = failure.reference.map(JSONValue.string)
            f["reason"] = .string(failure.reason)
            f["quality"] = failure.quality.json
        case .swipe(let activity):
            f["reader"] = .string(activity.reader)
            f["read"] = .bool(activity.read)
            f["delivered"] = activity.delivered.map(JSONValue.bool)
            f["reason"] = activity.reason.map(JSONValue.string)
            f["decided_at"] = activity.decidedAt.map { .number(Double($0)) }
        case .swipeIgnored(let reader, let read, let decidedAt):
            f["reader"] = .string(reader)
            f["read"] = .bool(read)
            f["decided_at"] = decidedAt.map { .number(Double($0)) }
        case .armEnded(_, let reader, let reference, let message, let reason):
            f["reader"] = .string(reader)
            f["reference"] = reference.map(JSONValue.string)
            f["message"] = message.map(JSONValue.string)
            f["reason"] = reason.map { .string($0.rawValue) }
        case .error(let error, let reader, let reference):
            f["code"] = .string(error.code)
            f["message"] = .string(error.message)
            f["reader"] = reader.map(JSONValue.string)
            f["reference"] = reference.map(JSONValue.string)
        }
        return .object(f)
    }

    /// The message as a direct reply to a request that carried `id`: the same, with `id` echoed.
    public func json(id: String?) -> JSONValue { json.carrying(id: id) }

    /// The `id` a message echoes: the request it answers (nil for events and for requests
    /// without one).
    public static func requestID(of message: JSONValue) -> String? { message["id"]?.stringValue }
}

extension ReaderInfo {
    /// `READER`.
    public var json: JSONValue {
        var f: [String: JSONValue] = [
            "class": "READER", "id": .string(id), "name": .string(name), "present": .bool(present),
            "jack": .string(jack.rawValue), "jack_flaps": .number(Double(jackFlaps)), "source": .string(source.rawValue),
            "bound": .bool(bound), "capturing": .bool(capturing), "armed": .bool(armed)]
        f["device"] = device.map(JSONValue.string)
        f["card"] = card.map(JSONValue.string)
        f["udev_path"] = udevPath.map(JSONValue.string)
        f["serial"] = serial.map(JSONValue.string)
        f["error"] = error.map(JSONValue.string)
        return .object(f)
    }
}

extension SwipeSummary {
    /// The `quality` object.
    public var json: JSONValue {
        var f: [String: JSONValue] = ["snr_db": .number(snrDB)]
        f["direction"] = direction.map(JSONValue.string)
        f["speed_cm_s"] = speedCmPerSecond.map(JSONValue.number)
        return .object(f)
    }
}

extension TrackSummary {
    public var json: JSONValue {
        var f: [String: JSONValue] = ["status": .string(status), "corrected": .number(Double(corrected))]
        f["track"] = track.map { .number(Double($0)) }
        f["masked"] = masked.map(JSONValue.string)
        f["text"] = text.map(JSONValue.string)
        return .object(f)
    }
}

extension CardEvent {
    func write(into f: inout [String: JSONValue]) {
        f["reader"] = .string(reader)
        f["reference"] = reference.map(JSONValue.string)
        f["card_type"] = .string(cardType.rawValue)
        f["masked_pan"] = maskedPAN.map(JSONValue.string)
        f["last4"] = last4.map(JSONValue.string)
        f["expiry"] = expiry.map(JSONValue.string)
        f["service_code"] = serviceCode.map(JSONValue.string)
        f["service"] = service.map(\.json)
        f["iin"] = iin.map(JSONValue.string)
        f["name"] = name.map(JSONValue.string)
        f["tracks"] = .array(tracks.map(\.json))
        f["quality"] = quality.json
        f["encrypted"] = encrypted
        f["test_key"] = testKey.map(JSONValue.bool)
    }
}

extension ServiceSummary {
    /// CARD's `service` object.
    public var json: JSONValue {
        ["chip": .bool(chip), "interchange": .string(interchange), "authorization": .string(authorization),
         "services": .string(services), "pin_required": .bool(pinRequired), "pin_where_possible": .bool(pinWherePossible)]
    }

    fileprivate static func parse(_ f: Fields) throws(ReplyParseError) -> ServiceSummary {
        ServiceSummary(chip: try f.bool("chip"), interchange: try f.string("interchange"), authorization: try f.string("authorization"),
                       services: try f.string("services"), pinRequired: try f.bool("pin_required"),
                       pinWherePossible: try f.bool("pin_where_possible"))
    }
}

extension StatusReport {
    func write(into f: inout [String: JSONValue]) {
        f["readers"] = .array(readers.map(\.json))
        f["armed"] = .number(Double(armed))
        f["clients"] = .number(Double(clients))
        var failed: [String: JSONValue] = [:]
        for (reason, n) in counters.failedReads { failed[reason] = .number(Double(n)) }
        f["counters"] = [
            "swipes": .number(Double(counters.swipes)), "good_reads": .number(Double(counters.goodReads)),
            "failed_reads": .object(failed), "xruns": .number(Double(counters.xruns)),
            "dropped_samples": .number(Double(counters.droppedSamples)), "audio_gaps": .number(Double(counters.audioGaps)),
            "events_dropped": .number(Double(counters.eventsDropped)), "noise_bursts": .number(Double(counters.noiseBursts)),
            "jack_flaps": .number(Double(counters.jackFlaps))]
        f["uptime_s"] = .number(uptimeSeconds)
        if let e = encryption {
            var fields: [String: JSONValue] = ["scheme": .string(e.scheme), "key_id": .string(e.keyID),
                                               "exhausted": .bool(e.exhausted), "test_key": .bool(e.testKey)]
            fields["next_counter"] = e.nextCounter.map { .number(Double($0)) }
            f["encryption"] = .object(fields)
        }
        f["process"] = ["rss_kib": .number(Double(process.residentKiB)), "heap_bytes": .number(Double(process.heapBytes)),
                        "fds": .number(Double(process.descriptors)), "threads": .number(Double(process.threads))]
    }
}

// MARK: Reading

/// A message that is not one the protocol defines, or lacks what its class requires.
public struct ReplyParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The fields of one object, read with errors that name the field.
private struct Fields {
    let fields: [String: JSONValue]
    let context: String

    init(_ value: JSONValue, _ context: String) throws(ReplyParseError) {
        guard case .object(let f) = value else { throw ReplyParseError("\(context) is not a JSON object") }
        fields = f
        self.context = context
    }

    func bad(_ key: String, _ what: String) -> ReplyParseError { ReplyParseError("\(context): \"\(key)\" \(what)") }

    func string(_ key: String) throws(ReplyParseError) -> String {
        guard let v = fields[key] else { throw bad(key, "is missing") }
        guard let s = v.stringValue else { throw bad(key, "is not a string") }
        return s
    }
    func optionalString(_ key: String) throws(ReplyParseError) -> String? {
        guard let v = fields[key], v != .null else { return nil }
        guard let s = v.stringValue else { throw bad(key, "is not a string") }
        return s
    }
    func bool(_ key: String) throws(ReplyParseError) -> Bool {
        guard let v = fields[key] else { throw bad(key, "is missing") }
        guard let b = v.boolValue else { throw bad(key, "is not true or false") }
        return b
    }
    func optionalBool(_ key: String) throws(ReplyParseError) -> Bool? {
        guard let v = fields[key], v != .null else { return nil }
        guard let b = v.boolValue else { throw bad(key, "is not true or false") }
        return b
    }
    func number(_ key: String) throws(ReplyParseError) -> Double {
        guard let v = fields[key] else { throw bad(key, "is missing") }
        guard let n = v.numberValue, n.isFinite else { throw bad(key, "is not a number") }
        return n
    }
    func optionalNumber(_ key: String) throws(ReplyParseError) -> Double? {
        guard let v = fields[key], v != .null else { return nil }
        guard let n = v.numberValue, n.isFinite else { throw bad(key, "is not a number") }
        return n
    }
    func integer(_ key: String) throws(ReplyParseError) -> Int {
        let n = try number(key)
        guard n == n.rounded(), abs(n) < 9e15 else { throw bad(key, "is not a whole number") }
        return Int(n)
    }
    func optionalInteger(_ key: String) throws(ReplyParseError) -> Int? {
        guard let n = try optionalNumber(key) else { return nil }
        guard n == n.rounded(), abs(n) < 9e15 else { throw bad(key, "is not a whole number") }
        return Int(n)
    }
    func array(_ key: String) throws(ReplyParseError) -> [JSONValue] {
        guard let v = fields[key] else { throw bad(key, "is missing") }
        guard let a = v.arrayValue else { throw bad(key, "is not an array") }
        return a
    }
    func object(_ key: String) throws(ReplyParseError) -> Fields {
        guard let v = fields[key] else { throw bad(key, "is missing") }
        return try Fields(v, "\(context).\(key)")
    }
}

extension Reply {
    /// Reads one message line (without its newline).
    public static func parse(line: [UInt8]) throws(ReplyParseError) -> Reply {
        let value: JSONValue
        do { value = try JSONValue.parse(line) } catch { throw ReplyParseError("the message is not one JSON object: \(error)") }
        return try parse(value)
    }

    /// Reads one message.
    public static func parse(_ value: JSONValue) throws(ReplyParseError) -> Reply {
        guard case .object = value else { throw ReplyParseError("the message is not a JSON object") }
        guard let name = value["class"]?.stringValue else { throw ReplyParseError("the message has no \"class\"") }
        let f = try Fields(value, name)
        switch name {
        case "VERSION":
            var capabilities: [String] = []
            if let list = f.fields["capabilities"], list != .null {
                guard let items = list.arrayValue else { throw f.bad("capabilities", "is not an array") }
                for item in items {
                    guard let name = item.stringValue else { throw f.bad("capabilities", "holds something that is not a string") }
                    capabilities.append(name)
                }
            }
            return .version(release: try f.string("release"), major: try f.integer("proto_major"), minor: try f.integer("proto_minor"),
                            capabilities: capabilities)
        case "READERS":
            var readers: [ReaderInfo] = []
            for r in try f.array("readers") { readers.append(try ReaderInfo.parse(r)) }
            return .readers(readers)
        case "READER":
            return .reader(try ReaderInfo.parse(value))
        case "WATCH":
            return .watch(enable: try f.bool("enable"))
        case "ARMED":
            return .armed(reader: try f.string("reader"), timeoutSeconds: try f.number("timeout_s"), reference: try f.optionalString("reference"))
        case "RELEASED":
            return .released(reader: try f.string("reader"), seconds: try f.number("seconds"))
        case "BOUND":
            return .bound(reader: try f.string("reader"))
        case "UNBOUND":
            return .unbound(reader: try f.string("reader"))
        case "SIMULATED":
            return .simulated(reader: try f.string("reader"), action: try f.string("action"), card: try f.optionalString("card"))
        case "STATUS":
            return .status(try StatusReport.parse(f))
        case "METRICS":
            return .metrics(text: try f.string("text"))
        case "CARD":
            return .card(try CardEvent.parse(f))
        case "SWIPE_FAILED":
            return .swipeFailed(SwipeFailure(reader: try f.string("reader"), reference: try f.optionalString("reference"),
                                             reason: try f.string("reason"), quality: try SwipeSummary.parse(f.object("quality"))))
        case "SWIPE":
            return .swipe(SwipeActivity(reader: try f.string("reader"), read: try f.bool("read"), delivered: try f.optionalBool("delivered"),
                                        reason: try f.optionalString("reason"), decidedAt: try f.optionalInteger("decided_at")))
        case "SWIPE_IGNORED":
            return .swipeIgnored(reader: try f.string("reader"), read: try f.bool("read"), decidedAt: try f.optionalInteger("decided_at"))
        case "CANCELLED", "TIMEOUT", "READER_REMOVED", "SUPERSEDED":
            // A reason this client does not know (a newer daemon's) is passed over like a field.
            let reason = name == "CANCELLED" ? try f.optionalString("reason").flatMap(CancelReason.init(rawValue:)) : nil
            return .armEnded(ArmEnding(rawValue: name)!, reader: try f.string("reader"), reference: try f.optionalString("reference"),
                             message: try f.optionalString("message"), reason: reason)
        case "ERROR":
            return .error(ProtocolError(try f.string("code"), try f.string("message")),
                          reader: try f.optionalString("reader"), reference: try f.optionalString("reference"))
        default:
            throw ReplyParseError("unknown message class \"\(name.utf8.count <= 64 ? name : String(name.prefix(64)) + "…")\"")
        }
    }
}

extension ReaderInfo {
    /// A `READER` object (its `class` is not checked: `READERS` and `STATUS` list them too).
    public static func parse(_ value: JSONValue) throws(ReplyParseError) -> ReaderInfo {
        let f = try Fields(value, "READER")
        var info = ReaderInfo(id: try f.string("id"), name: try f.string("name"))
        info.present = try f.bool("present")
        let jack = try f.string("jack")
        guard let j = JackStatus(rawValue: jack) else { throw f.bad("jack", "is not in, out, none or unknown") }
        info.jack = j
        info.jackFlaps = try f.integer("jack_flaps")
        let source = try f.string("source")
        guard let s = ReaderSource(rawValue: source) else { throw f.bad("source", "is not udev, config, replay or simulator") }
        info.source = s
        info.capturing = try f.bool("capturing")
        info.bound = try f.bool("bound")
        info.armed = try f.bool("armed")
        info.device = try f.optionalString("device")
        info.card = try f.optionalString("card")
        info.udevPath = try f.optionalString("udev_path")
        info.serial = try f.optionalString("serial")
        info.error = try f.optionalString("error")
        return info
    }
}

extension SwipeSummary {
    fileprivate static func parse(_ f: Fields) throws(ReplyParseError) -> SwipeSummary {
        SwipeSummary(snrDB: try f.number("snr_db"), direction: try f.optionalString("direction"),
                     speedCmPerSecond: try f.optionalNumber("speed_cm_s"))
    }
}

extension CardEvent {
    fileprivate static func parse(_ f: Fields) throws(ReplyParseError) -> CardEvent {
        let type = try f.string("card_type")
        guard let cardType = CardType(rawValue: type) else { throw f.bad("card_type", "is not payment or nonPayment") }
        var tracks: [TrackSummary] = []
        for t in try f.array("tracks") {
            let g = try Fields(t, "CARD.tracks")
            tracks.append(TrackSummary(track: try g.optionalInteger("track"), status: try g.string("status"),
                                       corrected: try g.integer("corrected"), masked: try g.optionalString("masked"),
                                       text: try g.optionalString("text")))
        }
        var card = CardEvent(reader: try f.string("reader"), reference: try f.optionalString("reference"), cardType: cardType,
                             tracks: tracks, quality: try SwipeSummary.parse(f.object("quality")))
        card.maskedPAN = try f.optionalString("masked_pan")
        card.last4 = try f.optionalString("last4")
        card.expiry = try f.optionalString("expiry")
        card.serviceCode = try f.optionalString("service_code")
        if let s = f.fields["service"], s != .null { card.service = try ServiceSummary.parse(Fields(s, "CARD.service")) }
        card.iin = try f.optionalString("iin")
        card.name = try f.optionalString("name")
        card.testKey = try f.optionalBool("test_key")
        if let e = f.fields["encrypted"], e != .null {
            guard case .object = e else { throw f.bad("encrypted", "is not an object") }
            card.encrypted = e
        }
        return card
    }
}

extension StatusReport {
    fileprivate static func parse(_ f: Fields) throws(ReplyParseError) -> StatusReport {
        var s = StatusReport()
        for r in try f.array("readers") { s.readers.append(try ReaderInfo.parse(r)) }
        s.armed = try f.integer("armed")
        s.clients = try f.integer("clients")
        let c = try f.object("counters")
        s.counters.swipes = try c.integer("swipes")
        s.counters.goodReads = try c.integer("good_reads")
        let failed = try c.object("failed_reads")
        for reason in failed.fields.keys { s.counters.failedReads[reason] = try failed.integer(reason) }
        s.counters.xruns = try c.integer("xruns")
        s.counters.droppedSamples = try c.integer("dropped_samples")
        s.counters.audioGaps = try c.integer("audio_gaps")
        s.counters.eventsDropped = try c.integer("events_dropped")
        s.counters.noiseBursts = try c.integer("noise_bursts")
        s.counters.jackFlaps = try c.integer("jack_flaps")
        s.uptimeSeconds = try f.number("uptime_s")
        if let e = f.fields["encryption"], e != .null {
            let g = try Fields(e, "STATUS.encryption")
            s.encryption = EncryptionStatus(scheme: try g.string("scheme"), keyID: try g.string("key_id"),
                                            exhausted: try g.bool("exhausted"), testKey: try g.bool("test_key"),
                                            nextCounter: try g.optionalInteger("next_counter"))
        }
        let p = try f.object("process")
        s.process = ProcessReport(residentKiB: try p.integer("rss_kib"), heapBytes: try p.integer("heap_bytes"),
                                  descriptors: try p.integer("fds"), threads: try p.integer("threads"))
        return s
    }
}
