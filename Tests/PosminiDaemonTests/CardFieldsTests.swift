import PosminiProtocol
import Testing
@testable import PosminiDaemon
import Magstripe
import SwipeDecoder
import TestSupport

/// The fields of a CARD a payment app needs (docs/PROTOCOL.md, CARD).
@Suite("CARD: the fields a payment app needs")
struct CardFieldsTests {
    /// The CARD the hub sends for `swipe` (clear non-payment cards as asked).
    func card(_ swipe: Swipe, clearNonPayment: Bool = false) async throws -> Reply {
        let hub = ReaderHub(clearNonPayment: clearNonPayment)
        await hub.readerAppeared(id: "r1", name: "reader")
        let pos = RecordingClient(1)
        _ = await hub.connect(pos)
        _ = await hub.handle(.arm(reader: "r1", timeout: 30, reference: "A"), from: 1)
        await hub.swipe(swipe, reader: "r1")
        let card = try #require(pos.received.last)
        #expect(card.kind == .card)
        return card
    }

    @Test("iin is the first 8 digits of a 16-digit PAN whatever the display mask; service_code is interpreted")
    func iinAndService() async throws {
        let narrow = try await card(decodedSwipe(mask: MaskPolicy(keepFirst: 4, keepLast: 4)))
        #expect(narrow["masked_pan"] == "4111********1111")
        #expect(narrow["iin"] == "41111111", "the IIN does not follow the display mask")
        #expect(narrow["service_code"] == "101")
        #expect(narrow["service"] == ["chip": false, "interchange": "international", "authorization": "normal",
                                      "services": "any", "pin_required": false, "pin_where_possible": false])
        let amex = try await card(decodedSwipe(";378282246310005=28122011234567890?"))
        #expect(amex["iin"] == "378282", "a 15-digit PAN gives 6")
        #expect(amex["service"]?["chip"] == true)
        #expect(!amex.text.contains("378282246310005"))
    }

    static let loyalty = ";8800123456:0001?"
    /// A card that is not a payment layout, holding a Luhn-valid 16-digit number.
    static let panInDisguise = ";4111111111111111?"

    @Test("a non-payment card's clear text goes to the arming client only with clear_non_payment; a payment card's never; a track that may hold a PAN never")
    func clearNonPayment() async throws {
        let off = try await card(decodedSwipe(Self.loyalty))
        #expect(off["card_type"] == "nonPayment" && off["tracks"]?.arrayValue?.first?["text"] == nil && !off.text.contains("8800123456"))
        let on = try await card(decodedSwipe(Self.loyalty), clearNonPayment: true)
        #expect(on["tracks"]?.arrayValue?.first?["text"] == .string(Self.loyalty), "\(on.text)")
        let payment = try await card(decodedSwipe(), clearNonPayment: true)
        #expect(payment["card_type"] == "payment" && !payment.text.contains("4111111111111111"))
        #expect(payment["tracks"]?.arrayValue?.allSatisfy { $0["text"] == nil } == true)
        let disguised = try await card(decodedSwipe(Self.panInDisguise), clearNonPayment: true)
        #expect(disguised["card_type"] == "nonPayment" && !disguised.text.contains("4111111111111111"), "\(disguised.text)")
    }

    @Test("what may be a PAN: a run of 12 to 19 digits passing Luhn, or starting 62", arguments: [
        ("=4111111111111111=", true), ("6212345678901234", true), ("12345678901", false), ("41111111111111111111", false),
        ("4111111111111112", false), ("8800123456:0001", false), ("", false),
    ])
    func mayHoldPAN(text: String, holds: Bool) {
        #expect(Array(text.utf8).withUnsafeBufferPointer(CardMessage.mayHoldPAN) == holds)
    }
}
