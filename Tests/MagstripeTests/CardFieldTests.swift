import Testing
import Magstripe

@Suite("PAN rule, Luhn and masking")
struct PANTests {
    @Test("Luhn over published test numbers", arguments: [
        ("4111111111111111", true), ("5555555555554444", true), ("378282246310005", true),
        ("6011111111111117", true), ("3530111333300000", true), ("4000056655665556", true),
        ("4111111111111112", false), ("378282246310006", false), ("6212345678901234", false),
        ("0", true), ("", false), ("41a1", false),
    ])
    func luhn(number: String, valid: Bool) {
        #expect(PAN.luhnValid(number) == valid)
    }

    @Test("the PAN rule: 12 to 19 digits, Luhn unless UnionPay")
    func panRule() throws {
        #expect(try PAN("4111111111111111").luhnValid)
        let unionPay = try PAN(Cards.unionPayNoLuhn)
        #expect(!unionPay.luhnValid)        // computed and reported
        #expect(throws: PANError.luhnFailed) { try PAN("4111111111111112") }
        #expect(throws: PANError.length(11)) { try PAN("41111111113") }
        #expect(throws: PANError.length(20)) { try PAN("41111111111111111113") }
        #expect(throws: PANError.nonDigit(at: 4)) { try PAN("4111 1111 1111 1111") }
        #expect(throws: PANError.length(0)) { try PAN("") }
        // 12 and 19 digits are the bounds.
        #expect(throws: Never.self) { try PAN("123456789015") }            // 12, Luhn-valid
        #expect(throws: Never.self) { try PAN("6200000000000000000") }     // 19, UnionPay
    }

    @Test("masking keeps first 6 and last 4", arguments: [
        ("4111111111111111", "411111******1111"),
        ("378282246310005", "378282*****0005"),
        ("6212345678901234567", "621234*********4567"),
        ("123456789015", "123456**9015"),
    ])
    func masking(pan: String, masked: String) throws {
        #expect(try PAN(pan).masked() == masked)
    }

    @Test("the mask policy is configurable and never shows a whole number")
    func maskPolicy() {
        #expect(MaskPolicy(keepFirst: 0, keepLast: 4).mask("4111111111111111") == "************1111")
        #expect(MaskPolicy(keepFirst: 8, keepLast: 4).mask("4111111111111111") == "41111111****1111")
        #expect(MaskPolicy(keepFirst: 19, keepLast: 19).mask("1234567890") == "**34567890")
        #expect(MaskPolicy(keepFirst: 6, keepLast: 4).mask("12345") == "**345")
        #expect(MaskPolicy(keepFirst: 6, keepLast: 4, maskCharacter: "X").mask("4111111111111111") == "411111XXXXXX1111")
    }
}

@Suite("Track fields")
struct CardFieldTests {
    @Test("Track 1 format B parses into fields, and masks")
    func track1() throws {
        guard case .payment(let card) = try TrackContent.parse(Cards.track1, format: .track1) else {
            Issue.record("not a payment track"); return
        }
        #expect(card.pan.digits == "4111111111111111")
        #expect(card.name == "CARDHOLDER/TEST A")
        #expect(card.expiry == ExpiryDate(yymm: "2812"))
        #expect(card.expiry.year == 28 && card.expiry.month == 12)
        #expect(card.serviceCode.digits == "101")
        #expect(card.discretionary == "000000000000000123456")
        let masked = card.masked()
        #expect(masked.text == "%B411111******1111^CARDHOLDER/TEST A^2812101*********************?")
        #expect(masked.pan == "411111******1111")
        #expect(masked.expiry == "2812")
        #expect(masked.serviceCode == "101")
        #expect(!masked.text.contains("4111111111111111"))
        #expect(!masked.text.contains("123456?"))
    }

    @Test("Track 2 parses into fields, and masks")
    func track2() throws {
        guard case .payment(let card) = try TrackContent.parse(Cards.track2, format: .track2) else {
            Issue.record("not a payment track"); return
        }
        #expect(card.pan.digits == "4111111111111111")
        #expect(card.name == nil)
        #expect(card.expiry.description == "2812")
        #expect(card.serviceCode.digits == "101")
        #expect(card.discretionary == "0000012345678")
        #expect(card.masked().text == ";411111******1111=2812101*************?")
    }

    @Test("UnionPay Track 2 without a Luhn digit is a payment card")
    func unionPay() throws {
        guard case .payment(let card) = try TrackContent.parse(Cards.unionPayTrack2, format: .track2) else {
            Issue.record("not a payment track"); return
        }
        #expect(!card.pan.luhnValid)
        #expect(card.serviceCode.hasChip)
    }

    @Test("Track 3 is kept raw, split at =")
    func track3() throws {
        guard case .nonPayment(let raw) = try TrackContent.parse(Cards.track3, format: .track3) else {
            Issue.record("Track 3 must be raw"); return
        }
        #expect(raw.fields.count == 6)
        #expect(raw.fields[0] == "011234567890123445")
        #expect(raw.fields[4] == "1")
        let masked = TrackContent.nonPayment(raw).masked()
        #expect(masked.text.first == ";" && masked.text.last == "?")
        #expect(masked.text.dropFirst().dropLast().allSatisfy { $0 == "*" })
        #expect(masked.pan == nil)
    }

    @Test("tracks that are not payment layouts are nonPayment, not errors", arguments: [
        ("%A1234567890^LOYALTY^?", TrackFormat.track1),
        ("%MEMBER 0042 GOLD?", .track1),
        (";1234567890123?", .track2),
        (";?", .track2),
    ])
    func nonPayment(text: String, format: TrackFormat) throws {
        guard case .nonPayment(let raw) = try TrackContent.parse(text, format: format) else {
            Issue.record("\(format) parsed as payment"); return
        }
        #expect(raw.text == text)
    }

    @Test("a payment layout with a bad field is a typed error", arguments: [
        (";4111111111111112=28121010000?", TrackFormat.track2, CardFieldError.pan(.luhnFailed)),
        (";41111111:1111111=28121010000?", .track2, .pan(.nonDigit(at: 8))),
        (";41111111111=28121010000?", .track2, .pan(.length(11))),
        (";4111111111111111=2813101000?", .track2, .invalidExpiry),
        (";4111111111111111=281?", .track2, .invalidExpiry),
        (";4111111111111111=2812?", .track2, .invalidServiceCode),
        (";4111111111111111=2812801000?", .track2, .invalidServiceCode),
        (";4111111111111111=2812191000?", .track2, .invalidServiceCode),
        ("%B4111111111111111?", .track1, .missingSeparator(after: "PAN")),
        ("%B4111111111111111^NAME ONLY?", .track1, .missingSeparator(after: "name")),
        ("%B4111111111111111^A^2812101?", .track1, .nameLength(1)),
        ("%B4111111111111111^ABCDEFGHIJKLMNOPQRSTUVWXYZA^2812101?", .track1, .nameLength(27)),
        ("%B411111111111111X^NAME/A^2812101?", .track1, .pan(.nonDigit(at: 15))),
        ("4111111111111111=2812101?", .track2, .notTrackText),
        (";4111111111111111=2812101", .track2, .notTrackText),
        ("", .track1, .notTrackText),
    ])
    func fieldErrors(text: String, format: TrackFormat, error: CardFieldError) {
        #expect(throws: error) { try TrackContent.parse(text, format: format) }
    }

    @Test("odd input never crashes the parser")
    func oddInput() {
        for text in ["%B^^?", ";=?", "%B🙂^X/Y^2812101?", ";\u{0}=\u{0}?", "%B" + String(repeating: "^", count: 200) + "?"] {
            for format in TrackFormat.allCases {
                _ = try? TrackContent.parse(text, format: format)
            }
        }
    }
}

@Suite("The issuer identification number and the service code's meaning")
struct IssuerAndServiceTests {
    @Test("the IIN is the first 8 digits of a PAN of 16 or more, the first 6 of a shorter one", arguments: [
        ("4111111111111111", "41111111"), ("378282246310005", "378282"), ("6200000000000000000", "62000000"),
        ("123456789015", "123456"), ("5555555555554444", "55555555"),
    ])
    func iin(pan: String, iin: String) throws {
        #expect(try PAN(pan).iin == iin)
    }

    @Test("each digit as ISO/IEC 7813 defines it", arguments: [
        ("101", false, ServiceCode.Interchange.international, ServiceCode.Authorization.normal, ServiceCode.Services.any, false, false),
        ("201", true, .international, .normal, .any, false, false),
        ("120", false, .international, .online, .any, true, false),
        ("226", true, .international, .online, .any, false, true),
        ("503", false, .national, .normal, .atm, true, false),
        ("601", true, .national, .normal, .any, false, false),
        ("702", false, .bilateral, .normal, .goodsAndServices, false, false),
        ("745", false, .bilateral, .onlineUnlessAgreed, .goodsAndServices, true, false),
        ("904", false, .test, .normal, .cash, false, false),
        ("127", false, .international, .online, .goodsAndServices, false, true),
    ])
    func serviceCode(code: String, chip: Bool, interchange: ServiceCode.Interchange, authorization: ServiceCode.Authorization,
                     services: ServiceCode.Services, pinRequired: Bool, pinWherePossible: Bool) throws {
        let s = try #require(ServiceCode(code))
        #expect(s.hasChip == chip && s.interchange == interchange && s.authorization == authorization)
        #expect(s.services == services && s.pinRequired == pinRequired && s.pinWherePossible == pinWherePossible)
    }

    @Test("digits ISO/IEC 7813 leaves unassigned are no service code", arguments: ["301", "111", "108", "1010", "10", "a01"])
    func unassigned(code: String) {
        #expect(ServiceCode(code) == nil)
    }
}
