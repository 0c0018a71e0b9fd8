public import Secrets

/// Why a primary account number is not acceptable.
public enum PANError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A character that is not a decimal digit, at this index.
    case nonDigit(at: Int)
    /// Fewer than 12 or more than 19 digits.
    case length(Int)
    /// The Luhn check digit is wrong (and the number is not one exempt from it).
    case luhnFailed

    public var description: String {
        switch self {
        case .nonDigit(let i): "PAN has a non-digit at position \(i + 1)"
        case .length(let n): "PAN has \(n) digits; a PAN has 12 to 19"
        case .luhnFailed: "PAN fails the Luhn check"
        }
    }
}

/// A primary account number, validated by the project's one PAN rule:
/// 12 to 19 decimal digits; the Luhn result is computed and reported; numbers starting `62`
/// (UnionPay) are valid even when they fail Luhn; every other payment PAN must pass it.
public struct PAN: Sendable, Hashable {
    /// The digits, as ASCII, in a wiped buffer. Clear card data: never log or print it.
    public let digits: SecretText
    /// Whether the Luhn check digit is right.
    public let luhnValid: Bool

    public static let minimumLength = 12
    public static let maximumLength = 19

    public init(_ digits: Substring) throws(PANError) {
        try self.init(String(digits))
    }

    /// From a string (tests and tools; the decoder builds PANs from wiped bytes).
    public init(_ digits: String) throws(PANError) {
        try self.init(secret: SecretText(copying: Array(digits.utf8)))
    }

    public init(secret digits: SecretText) throws(PANError) {
        let checked: Result<Bool, PANError> = digits.bytes.withUnsafeBytes { b in
            for i in 0..<b.count where b[i] < 0x30 || b[i] > 0x39 { return .failure(.nonDigit(at: i)) }
            guard (PAN.minimumLength...PAN.maximumLength).contains(b.count) else { return .failure(.length(b.count)) }
            let luhn = PAN.luhnValid(b)
            guard luhn || (b.count >= 2 && b[0] == 0x36 && b[1] == 0x32) else { return .failure(.luhnFailed) }
            return .success(luhn)
        }
        self.luhnValid = try checked.get()
        self.digits = digits
    }

    /// Numbers whose issuers do not all use a Luhn check digit (UnionPay, `62…`).
    public static func isLuhnExempt(_ digits: String) -> Bool {
        digits.utf8.starts(with: "62".utf8)
    }

    /// The Luhn (mod 10) check over a string of decimal digits. False for an empty string or
    /// any non-digit.
    public static func luhnValid(_ digits: String) -> Bool {
        Array(digits.utf8).withUnsafeBufferPointer { luhnValid($0) }
    }

    /// The Luhn check over ASCII digits.
    public static func luhnValid(_ digits: UnsafeBufferPointer<UInt8>) -> Bool {
        var sum = 0
        var double = false
        var count = 0
        for byte in digits.reversed() {
            guard byte >= 0x30 && byte <= 0x39 else { return false }
            var d = Int(byte - 0x30)
            if double {
                d *= 2
                if d > 9 { d -= 9 }
            }
            sum += d
            double.toggle()
            count += 1
        }
        return count > 0 && sum % 10 == 0
    }

    /// The digits with all but the first `policy.keepFirst` and last `policy.keepLast` replaced
    /// by `*`.
    public func masked(_ policy: MaskPolicy = .standard) -> String {
        digits.bytes.withUnsafeBytes { policy.mask($0) }
    }

    /// The issuer identification number prefix (first six digits): safe to show.
    public var bin: String { digits.bytes.withUnsafeBytes { String(decoding: $0.prefix(6), as: UTF8.self) } }
    /// The issuer identification number as ISO/IEC 7812-1:2017 counts it: the first 8 digits of
    /// a PAN of 16 digits or more, the first 6 of a shorter one. PCI DSS allows showing at most
    /// these (with the last 4), whatever the display mask.
    public var iin: String {
        digits.bytes.withUnsafeBytes { String(decoding: $0.prefix($0.count >= 16 ? 8 : 6), as: UTF8.self) }
    }
    /// The last four digits: safe to show.
    public var last4: String { digits.bytes.withUnsafeBytes { String(decoding: $0.suffix(4), as: UTF8.self) } }
}

/// How much of a PAN stays visible.
public struct MaskPolicy: Sendable, Hashable {
    public var keepFirst: Int
    public var keepLast: Int
    public var maskCharacter: Character

    /// First 6 and last 4 digits visible (PCI DSS).
    public static let standard = MaskPolicy(keepFirst: 6, keepLast: 4)

    public init(keepFirst: Int = 6, keepLast: Int = 4, maskCharacter: Character = "*") {
        self.keepFirst = max(0, keepFirst)
        self.keepLast = max(0, keepLast)
        self.maskCharacter = maskCharacter
    }

    /// Digits that stay masked whatever the policy says, so a short number never shows whole.
    public static let minimumMasked = 2

    /// Masks a digit string. When the policy would leave fewer than `minimumMasked` digits
    /// masked, the visible counts shrink (the leading digits first) until it does not.
    public func mask(_ digits: String) -> String {
        Array(digits.utf8).withUnsafeBufferPointer { mask($0) }
    }

    /// Masks ASCII digits; only the visible ones reach the returned string.
    public func mask(_ characters: UnsafeBufferPointer<UInt8>) -> String {
        let n = characters.count
        let visibleBudget = max(0, n - MaskPolicy.minimumMasked)
        var first = keepFirst
        var last = keepLast
        while first + last > visibleBudget {
            if first > 0 { first -= 1 } else { last -= 1 }
        }
        var out = ""
        out.reserveCapacity(n)
        for i in 0..<n {
            if i < first || i >= n - last {
                out.unicodeScalars.append(Unicode.Scalar(characters[i]))
            } else {
                out.append(maskCharacter)
            }
        }
        return out
    }
}
