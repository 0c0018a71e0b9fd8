import Testing
import PosminiProtocol

/// Every message of docs/PROTOCOL.md, typed: written by `json`, read back by `Reply.parse`.
@Suite("Protocol: typed replies both ways")
struct ReplyTests {
    static var reader: ReaderInfo {
        var r = ReaderInfo(id: "Reader_0001@pci-0000:00:14.0-usb-0:1:1.0", name: "USB Audio Reader")
        r.jack = .noJack
        r.source = .udev
        r.capturing = true
        r.device = "hw:CARD=Reader,DEV=0"
        r.card = "Reader"
        r.udevPath = "pci-0000:00:14.0-usb-0:1:1.0"
        r.serial = "Reader_0001"
        r.bound = true
        r.armed = true
        r.jackFlaps = 2
        return r
    }

    static var card: CardEvent {
        var c = CardEvent(reader: "replay", reference: "order-1042", cardType: .payment,
                          tracks: [TrackSummary(track: 1, status: "ok", corrected: 0, masked: "%B411111******1111^CARDHOLDER/TEST A^2812101****?"),
                                   TrackSummary(track: 2, status: "lrc", corrected: 1),
                                   TrackSummary(track: nil, status: "noStartSentinel")],
                          quality: SwipeSummary(snrDB: 35.2, direction: "forward", speedCmPerSecond: 31.4))
        c.maskedPAN = "411111******1111"
        c.last4 = "1111"
        c.expiry = "2812"
        c.serviceCode = "101"
        c.name = "CARDHOLDER/TEST A"
        c.encrypted = ["scheme": "aes128-dukpt", "ksn": "123456789012345600000001", "tracks": ["1": "8B4D"], "mac": "8BB9"]
        return c
    }

    static var status: StatusReport {
        var s = StatusReport()
        s.readers = [reader, ReaderInfo(id: "replay", name: "recording")]
        s.armed = 1
        s.clients = 3
        s.counters.swipes = 12
        s.counters.goodReads = 9
        s.counters.failedReads = ["tooFast": 2, "noisy": 1]
        s.counters.xruns = 1
        s.counters.droppedSamples = 441
        s.counters.audioGaps = 1
        s.counters.eventsDropped = 0
        s.counters.noiseBursts = 4
        s.counters.jackFlaps = 2
        s.uptimeSeconds = 3_600
        s.encryption = .init(scheme: "tdes-dukpt", keyID: "FFFF9876543210", exhausted: false, testKey: true, nextCounter: 7)
        s.process = .init(residentKiB: 20_480, heapBytes: 1_234_567, descriptors: 37, threads: 9)
        return s
    }

    /// One of each message class, with its optional fields both given and left out.
    static let all: [Reply] = [
        .version(release: "0.5.0", major: 1, minor: 3), .version(release: "0.6.0", major: 1, minor: 4, capabilities: ["request_id", "too_late"]),
        .readers([]), .readers([reader, ReaderInfo(id: "replay", name: "recording")]),
        .reader(reader), .reader(ReaderInfo(id: "hw:CARD=PCH,DEV=0", name: "HDA Intel PCH")),
        .watch(enable: true), .watch(enable: false),
        .armed(reader: "replay", timeoutSeconds: 120, reference: "order-1042"), .armed(reader: "replay", timeoutSeconds: 0.5, reference: nil),
        .released(reader: "replay", seconds: 60), .bound(reader: "replay"), .unbound(reader: "replay"),
        .simulated(reader: "simulator", action: "swipe", card: "visa"), .simulated(reader: "simulator", action: "remove", card: nil),
        .status(status), .status(StatusReport()),
        .metrics(text: "# HELP posminid_clients Clients.\n# TYPE posminid_clients gauge\nposminid_clients 1\n"),
        .card(card),
        .card(CardEvent(reader: "replay", cardType: .nonPayment, tracks: [TrackSummary(track: 3, status: "ok", masked: ";0123****?")],
                        quality: SwipeSummary(snrDB: 20))),
        .swipeFailed(SwipeFailure(reader: "replay", reference: "order-7", reason: "tooFast", quality: SwipeSummary(snrDB: 28.4, speedCmPerSecond: 210))),
        .swipeFailed(SwipeFailure(reader: "replay", reason: "notAMagstripe", quality: SwipeSummary(snrDB: 12))),
        .swipe(SwipeActivity(reader: "replay", read: true, delivered: true)),
        .swipe(SwipeActivity(reader: "replay", read: true, delivered: false)),
        .swipe(SwipeActivity(reader: "replay", read: false, reason: "noisy", decidedAt: 88_200)),
        .swipeIgnored(reader: "replay", read: true, decidedAt: nil), .swipeIgnored(reader: "replay", read: false, decidedAt: 12),
        .armEnded(.cancelled, reader: "replay", reference: nil, message: nil),
        .armEnded(.cancelled, reader: "replay", reference: "order-8", reason: .client),
        .armEnded(.cancelled, reader: "replay", reference: nil, reason: .shutdown),
        .armEnded(.superseded, reader: "replay", reference: "A-1", message: "armed again (reference A-2)"),
        .error(ProtocolError("too_late", "the arm on \"replay\" already ended with a card"), reader: "replay", reference: "order-3"),
        .armEnded(.timeout, reader: "replay", reference: "order-9", message: nil),
        .armEnded(.readerRemoved, reader: "replay", reference: nil, message: "the device failed: No such device"),
        .error(ProtocolError("reader_busy", "reader \"replay\" is armed by another client")),
        .error(ProtocolError("key_exhausted", "the reader's encryption key is used up"), reader: "replay", reference: "order-3"),
    ]

    @Test("every message class round-trips through json and parse, and through its text line")
    func roundTrips() throws {
        // Every class, and every class PROTOCOL.md names.
        #expect(Set(Self.all.map(\.kind)) == Set(Reply.Kind.allCases))
        #expect(Set(Reply.Kind.allCases.map(\.rawValue)) == ["VERSION", "READERS", "READER", "WATCH", "ARMED", "RELEASED", "BOUND", "UNBOUND",
                                                              "STATUS", "METRICS", "CARD", "SWIPE_FAILED", "SWIPE", "SWIPE_IGNORED", "CANCELLED",
                                                              "TIMEOUT", "READER_REMOVED", "SUPERSEDED", "SIMULATED", "ERROR"])
        for reply in Self.all {
            #expect(reply.json["class"]?.stringValue == reply.messageClass)
            #expect(try Reply.parse(reply.json) == reply, "\(reply.json.text)")
            #expect(try Reply.parse(line: Array(reply.json.text.utf8)) == reply, "\(reply.json.text)")
        }
    }

    @Test("the documented CARD example reads as a payment card with its encrypted object")
    func documentedCard() throws {
        let line = #"{"class":"CARD","card_type":"payment","encrypted":{"ksn":"123456789012345600000001","mac":"8BB9","scheme":"aes128-dukpt","tracks":{"1":"8B4D"}},"expiry":"2812","last4":"1111","masked_pan":"411111******1111","name":"CARDHOLDER/TEST A","quality":{"direction":"forward","snr_db":35.2,"speed_cm_s":31.4},"reader":"replay","reference":"order-1042","tracks":[{"corrected":0,"masked":"%B411111******1111^CARDHOLDER/TEST A^2812101**********************?","status":"ok","track":1}]}"#
        guard case .card(let card) = try Reply.parse(line: Array(line.utf8)) else { Issue.record("not a CARD"); return }
        #expect(card.maskedPAN == "411111******1111" && card.last4 == "1111" && card.cardType == .payment)
        #expect(card.quality.speedCmPerSecond == 31.4 && card.tracks.first?.track == 1)
        #expect(card.encrypted?["scheme"] == "aes128-dukpt")
    }

    @Test("fields a newer daemon adds are passed over; quality figures are written to a tenth")
    func tolerant() throws {
        let line = #"{"class":"ARMED","reader":"replay","timeout_s":30,"queue_position":1}"#
        #expect(try Reply.parse(line: Array(line.utf8)) == .armed(reader: "replay", timeoutSeconds: 30, reference: nil))
        let q = SwipeSummary(snrDB: 35.24, direction: nil, speedCmPerSecond: 31.46).json
        #expect(q["snr_db"] == 35.2 && q["speed_cm_s"] == 31.5 && q["direction"] == nil)
    }

    @Test("refused, naming what is wrong: not JSON, no class, an unknown class, a missing or mistyped field, an unknown jack or card type",
          arguments: [
            ("{\"class\":", "not one JSON object"),
            ("[1,2]", "not a JSON object"),
            ("{\"reader\":\"replay\"}", "no \"class\""),
            ("{\"class\":\"CARDS\"}", "unknown message class \"CARDS\""),
            ("{\"class\":\"ARMED\",\"timeout_s\":30}", "ARMED: \"reader\" is missing"),
            ("{\"class\":\"ARMED\",\"reader\":7,\"timeout_s\":30}", "ARMED: \"reader\" is not a string"),
            ("{\"class\":\"VERSION\",\"release\":\"0.5.0\",\"proto_major\":1.5,\"proto_minor\":3}", "\"proto_major\" is not a whole number"),
            ("{\"class\":\"WATCH\",\"enable\":\"yes\"}", "\"enable\" is not true or false"),
            ("{\"class\":\"SWIPE_FAILED\",\"reader\":\"r\",\"reason\":\"noisy\"}", "\"quality\" is missing"),
            ("{\"class\":\"READER\",\"id\":\"r\",\"name\":\"n\",\"present\":true,\"jack\":\"half\",\"jack_flaps\":0,\"source\":\"udev\",\"capturing\":true,\"bound\":false,\"armed\":false}", "\"jack\" is not in, out, none or unknown"),
            ("{\"class\":\"CARD\",\"reader\":\"r\",\"card_type\":\"gift\",\"tracks\":[],\"quality\":{\"snr_db\":1}}", "\"card_type\" is not payment or nonPayment"),
            ("{\"class\":\"STATUS\",\"readers\":[],\"armed\":0,\"clients\":1,\"counters\":{},\"uptime_s\":1,\"process\":{}}", "STATUS.counters: \"swipes\" is missing"),
          ])
    func refused(_ line: String, _ words: String) {
        do {
            let reply = try Reply.parse(line: Array(line.utf8))
            Issue.record("accepted \(line) as \(reply)")
        } catch {
            #expect(error.message.contains(words), "\(line): \(error.message)")
        }
    }
}

@Suite("Protocol: requests both ways")
struct RequestTests {
    @Test("a request's id: any command may carry one (a string of at most 64 bytes), and a reply echoes it; refusals still give the id when it could be read")
    func requestIDs() throws {
        let line = Array(Request.arm(reader: "r1", timeout: 30, reference: "A").json(id: "sale-7/arm").text.utf8)
        let (id, parsed) = Request.parseLine(line)
        #expect(try id == "sale-7/arm" && parsed.get() == .arm(reader: "r1", timeout: 30, reference: "A"))
        #expect(try Request.parse(line) == .arm(reader: "r1", timeout: 30, reference: "A"))
        for request: Request in [.watch(true), .cancel(reader: "r1"), .status, .bind("r1"), .unbind("r1"), .release(reader: "r1", seconds: 0)] {
            let (echo, result) = Request.parseLine(Array(request.json(id: "x").text.utf8))
            #expect(try echo == "x" && result.get() == request)
        }
        let refused = Request.parseLine(Array(#"{"cmd":"arm","timeout_s":900,"id":"q"}"#.utf8))
        #expect(refused.id == "q")
        #expect(throws: ProtocolError("invalid_timeout", "\"timeout_s\" must be more than 0 and at most 120")) { try refused.request.get() }
        for bad in [#"{"cmd":"status","id":5}"#, #"{"cmd":"status","id":"\#(String(repeating: "é", count: 33))"}"#] {
            let (echo, result) = Request.parseLine(Array(bad.utf8))
            #expect(echo == nil)
            #expect(throws: ProtocolError.self) { try result.get() }
        }
        #expect(Request.parseLine(Array(#"{"cmd":"status","id":"\#(String(repeating: "é", count: 32))"}"#.utf8)).id?.utf8.count == 64)
        let reply = Reply.armed(reader: "r1", timeoutSeconds: 30, reference: nil)
        #expect(Reply.requestID(of: reply.json(id: "q")) == "q" && Reply.requestID(of: reply.json) == nil)
        #expect(try Reply.parse(reply.json(id: "q")) == reply, "a client that does not use ids passes the field over")
    }

    @Test("VERSION lists the capabilities; one from a daemon before 1.4 has none")
    func capabilities() throws {
        let old = #"{"class":"VERSION","proto_major":1,"proto_minor":3,"release":"0.5.0"}"#
        #expect(try Reply.parse(line: Array(old.utf8)) == .version(release: "0.5.0", major: 1, minor: 3, capabilities: []))
        let new = Reply.version(release: "0.6.0", major: 1, minor: 4, capabilities: PosminiProtocol.capabilities)
        #expect(new.json["capabilities"]?.arrayValue?.count == PosminiProtocol.capabilities.count)
        #expect(throws: ReplyParseError.self) { try Reply.parse(line: Array(#"{"class":"VERSION","proto_major":1,"proto_minor":4,"release":"x","capabilities":"all"}"#.utf8)) }
    }

    @Test("every request a client can send reads back as itself")
    func roundTrips() throws {
        let all: [Request] = [.watch(true), .watch(false), .arm(reader: nil, timeout: nil, reference: nil),
                              .arm(reader: "replay", timeout: 30, reference: "order-1"), .cancel(reader: nil), .cancel(reader: "replay"), .status,
                              .bind("replay"), .unbind("replay"), .release(reader: "replay", seconds: 60)]
        for request in all {
            #expect(try Request.parse(Array(request.json.text.utf8)) == request, "\(request.json.text)")
        }
    }
}
