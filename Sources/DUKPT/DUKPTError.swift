/// Why a DUKPT derivation or a cryptogram cannot be made or read.
public enum DUKPTError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A key of a length the scheme does not use.
    case keyLength(Int, expected: [Int])
    /// An Initial Key ID that is not 8 bytes.
    case ikidLength(Int)
    /// A key serial number of the wrong length for the scheme.
    case ksnLength(Int, expected: Int)
    /// A transaction counter the scheme never uses (zero, too many one-bits, out of range).
    case invalidCounter(UInt32)
    /// Every counter value of this key has been used.
    case exhausted
    /// Ciphertext that is not whole cipher blocks.
    case ciphertextLength(Int, block: Int)
    /// The MAC over the cryptogram does not match: wrong key or altered data.
    case macMismatch
    /// An AES cryptogram without its MAC (AES DUKPT cryptograms always carry one).
    case macMissing
    /// The cipher library refused an operation.
    case cipher(String)

    public var description: String {
        switch self {
        case .keyLength(let n, let expected):
            "key has \(n) bytes; expected \(expected.map(String.init).joined(separator: " or "))"
        case .ikidLength(let n): "Initial Key ID has \(n) bytes; it has 8"
        case .ksnLength(let n, let expected): "KSN has \(n) bytes; expected \(expected)"
        case .invalidCounter(let c): "transaction counter \(c) is not one this scheme uses"
        case .exhausted: "the key's transaction counter is exhausted: provision a new key"
        case .ciphertextLength(let n, let block): "ciphertext has \(n) bytes, not a multiple of \(block)"
        case .macMismatch: "MAC does not match: wrong BDK or altered cryptogram"
        case .macMissing: "no MAC: an AES DUKPT cryptogram carries one (\"mac\"); the message was cut or altered"
        case .cipher(let what): "cipher failure: \(what)"
        }
    }
}
