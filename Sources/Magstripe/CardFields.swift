public import Secrets

/// Why a track text that claims a payment layout does not hold one.
public enum CardFieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text does not start with the format's start sentinel and end with `?`.
    case notTrackText
    /// The primary account number breaks the PAN rule.
    case pan(PANError)
    /// A field separator (`^` on Track 1, `=` on Track 2) is missing after this field.
    case missingSeparator(after: String)
    /// The cardholder name on Track 1 is not 2 to 26 characters.
    case nameLength(Int)
    /// The expiry is not four digits `YYMM` with a month from 01 to 12.
    case invalidExpiry
    /// The service code is not three digits with values ISO/IEC 7813 defines.
    case invalidServiceCode

    public var description: String {
        switch self {
        case .notTrackText: "not a track text (sentinels missing)"
        case .pan(let e): e.description
        case .missingSeparator(let field): "field separator missing after the \(field)"
        case .nameLength(let n): "cardholder name has \(n) characters; it must have 2 to 26"
        case .invalidExpiry: "expiry date is not YYMM with a month 01-12"
        case .invalidServiceCode: "service code is not three digits of ISO/IEC 7813 values"
        }
    }
}

/// Expiry date as the card holds it: `YYMM`.
public struct ExpiryDate: Sendable, Hashable, CustomStringConvertible {
    /// Two-digit year.
    public let year: Int
    /// Month, 1 to 12.
    public let month: Int

    public init?(yymm: some StringProtocol) {
        let bytes = Array(yymm.utf8)
        guard bytes.count == 4, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        let year = Int(bytes[0] - 0x30) * 10 + Int(bytes[1] - 0x30)
        let month = Int(bytes[2] - 0x30) * 10 + Int(bytes[3] - 0x30)
        guard (1...12).contains(month) else { return nil }
        self.year = year
        self.month = month
    }

    /// `YYMM`, as on the card.
    public var description: String {
        (year < 10 ? "0" : "") + String(year) + (month < 10 ? "0" : "") + String(month)
    }
}

/// The three-digit service code (ISO/IEC 7813): interchange, authorisation, allowed services.
public struct ServiceCode: Sendable, Hashable, CustomStringConvertible {
    public let digits: String

    /// Accepts only values ISO/IEC 7813 assigns: first digit 1, 2, 5, 6, 7 or 9; second 0, 2 or
    /// 4; third 0 to 7.
    public init?(_ text: some StringProtocol) {
        let b = Array(text.utf8)
        guard b.count == 3 else { return nil }
        guard [0x31, 0x32, 0x35, 0x36, 0x37, 0x39].contains(b[0]),
              [0x30, 0x32, 0x34].contains(b[1]),
              (0x30...0x37).contains(b[2]) else { return nil }
        digits = String(text)
    }

    /// The card has a chip (first digit 2 or 6): a terminal that can should read the chip.
    public var hasChip: Bool { digits.first == "2" || digits.first == "6" }

    private var digit: [UInt8] { Array(digits.utf8).map { $0 - 0x30 } }

    /// Where the card may be used (first digit).
    public enum Interchange: String, Sendable, Hashable, CaseIterable {
        /// 1, 2: international interchange.
        case international
        /// 5, 6: national interchange only, except under bilateral agreement.
        case national
        /// 7: no interchange except under bilateral agreement (a closed-loop card).
        case bilateral
        /// 9: a test card.
        case test
    }

    public var interchange: Interchange {
        switch digit[0] {
        case 1, 2: .international
        case 5, 6: .national
        case 7: .bilateral
        default: .test
        }
    }

    /// How a transaction is authorised (second digit).
    public enum Authorization: String, Sendable, Hashable, CaseIterable {
        /// 0: normal rules.
        case normal
        /// 2: by the issuer, online.
        case online
        /// 4: by the issuer, online, except under bilateral agreement.
        case onlineUnlessAgreed = "online_unless_agreed"
    }

    public var authorization: Authorization {
        switch digit[1] {
        case 0: .normal
        case 2: .online
        default: .onlineUnlessAgreed
        }
    }

    /// What the card may pay for (third digit).
    public enum Services: String, Sendable, Hashable, CaseIterable {
        /// 0, 1, 6: no restrictions.
        case any
        /// 2, 5, 7: goods and services only (no cash).
        case goodsAndServices = "goods_and_services"
        /// 3: ATM only.
        case atm
        /// 4: cash only.
        case cash
    }

    public var services: Services {
        switch digit[2] {
        case 0, 1, 6: .any
        case 2, 5, 7: .goodsAndServices
        case 3: .atm
        default: .cash
        }
    }

    /// A PIN is required (third digit 0, 3 or 5).
    public var pinRequired: Bool { [0, 3, 5].contains(digit[2]) }
    /// A PIN is to be asked where the terminal can (third digit 6 or 7).
    public var pinWherePossible: Bool { [6, 7].contains(digit[2]) }

    public var description: String { digits }
}

/// A Track 1 (format B) or Track 2 read in the payment-card layout of ISO/IEC 7813.
/// Holds clear card data: never log or print it; show `masked(_:)` instead.
public struct PaymentTrack: Sendable, Hashable {
    public let format: TrackFormat
    public let pan: PAN
    /// Track 1 only: `SURNAME/GIVEN`, as encoded.
    public let name: String?
    public let expiry: ExpiryDate
    public let serviceCode: ServiceCode
    /// Issuer data after the service code; may hold card verification values.
    public let discretionary: SecretText
}

/// A track without a payment layout (any Track 3, or a Track 1/2 that is not a payment card):
/// raw text with its fields split at the format's separator. Clear card data.
public struct RawTrack: Sendable, Hashable {
    public let format: TrackFormat
    /// Start sentinel through end sentinel.
    public let text: SecretText
    /// The text between the sentinels, split at `^` (Track 1) or `=` (Tracks 2 and 3).
    public let fields: [SecretText]
}

/// What a track holds.
public enum TrackContent: Sendable, Hashable {
    case payment(PaymentTrack)
    /// Not a payment layout: a loyalty or access card, any Track 3. Not an error.
    case nonPayment(RawTrack)

    public var format: TrackFormat {
        switch self {
        case .payment(let p): p.format
        case .nonPayment(let r): r.format
        }
    }

    /// Parses a track text (start sentinel through end sentinel): tests and tools.
    public static func parse(_ text: String, format: TrackFormat) throws(CardFieldError) -> TrackContent {
        try parse(SecretText(copying: Array(text.utf8)), format: format)
    }

    typealias Bytes = Slice<UnsafeBufferPointer<UInt8>>

    /// Parses a track text (start sentinel through end sentinel), ASCII in a wiped buffer; the
    /// fields that hold card data are copied only into wiped buffers.
    ///
    /// Track 1 is a payment layout when it starts `%B`; Track 2 when it holds `=`; every other
    /// text, and every Track 3, is `nonPayment`. A text that claims the payment layout must hold
    /// it completely, or parsing throws the field that is wrong.
    public static func parse(_ text: SecretText, format: TrackFormat) throws(CardFieldError) -> TrackContent {
        let result: Result<TrackContent, CardFieldError> = text.bytes.withUnsafeBytes { all in
            let bytes = all[...]
            guard bytes.count >= 2,
                  bytes.first == format.ascii(ofValue: format.startSentinelValue),
                  bytes.last == UInt8(ascii: "?") else { return .failure(.notTrackText) }
            let body = bytes[(bytes.startIndex + 1) ..< (bytes.endIndex - 1)]
            let separator: UInt8 = format == .track1 ? UInt8(ascii: "^") : UInt8(ascii: "=")
            do throws(CardFieldError) {
                switch format {
                case .track1 where body.first == UInt8(ascii: "B"):
                    return .success(.payment(try parseTrack1(body.dropFirst())))
                case .track2 where body.contains(separator):
                    return .success(.payment(try parseTrack2(body)))
                default:
                    let fields = body.split(separator: separator, omittingEmptySubsequences: false).map(secret)
                    return .success(.nonPayment(RawTrack(format: format, text: text, fields: fields)))
                }
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func string(_ bytes: Bytes) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    private static func secret(_ bytes: Bytes) -> SecretText {
        SecretText(SecretBytes(copying: bytes))
    }

    /// `PAN ^ NAME ^ YYMM SSS discretionary` (after `%B`).
    private static func parseTrack1(_ body: Bytes) throws(CardFieldError) -> PaymentTrack {
        let caret = UInt8(ascii: "^")
        guard let s1 = body.firstIndex(of: caret) else { throw .missingSeparator(after: "PAN") }
        let pan = try makePAN(body[body.startIndex ..< s1])
        let rest = body[(s1 + 1)...]
        guard let s2 = rest.firstIndex(of: caret) else { throw .missingSeparator(after: "name") }
        let name = rest[rest.startIndex ..< s2]
        guard (2...26).contains(name.count) else { throw .nameLength(name.count) }
        let (expiry, service, discretionary) = try expiryServiceDiscretionary(rest[(s2 + 1)...])
        return PaymentTrack(format: .track1, pan: pan, name: string(name), expiry: expiry,
                            serviceCode: service, discretionary: discretionary)
    }

    /// `PAN = YYMM SSS discretionary`.
    private static func parseTrack2(_ body: Bytes) throws(CardFieldError) -> PaymentTrack {
        guard let s1 = body.firstIndex(of: UInt8(ascii: "=")) else { throw .missingSeparator(after: "PAN") }
        let pan = try makePAN(body[body.startIndex ..< s1])
        let (expiry, service, discretionary) = try expiryServiceDiscretionary(body[(s1 + 1)...])
        return PaymentTrack(format: .track2, pan: pan, name: nil, expiry: expiry,
                            serviceCode: service, discretionary: discretionary)
    }

    private static func makePAN(_ bytes: Bytes) throws(CardFieldError) -> PAN {
        do {
            return try PAN(secret: secret(bytes))
        } catch {
            throw .pan(error)
        }
    }

    private static func expiryServiceDiscretionary(
        _ rest: Bytes
    ) throws(CardFieldError) -> (ExpiryDate, ServiceCode, SecretText) {
        guard rest.count >= 4, let expiry = ExpiryDate(yymm: string(rest.prefix(4))) else {
            throw .invalidExpiry
        }
        let afterExpiry = rest.dropFirst(4)
        guard afterExpiry.count >= 3, let service = ServiceCode(string(afterExpiry.prefix(3))) else {
            throw .invalidServiceCode
        }
        return (expiry, service, secret(afterExpiry.dropFirst(3)))
    }
}
