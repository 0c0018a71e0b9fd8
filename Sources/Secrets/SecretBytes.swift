#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Clear card data or key material: one heap buffer of fixed size that is never copied
/// (`~Copyable`) and is overwritten with zeros, by a write the optimizer keeps
/// (`explicit_bzero`), when it dies. Move it, borrow it, never turn it into a `String`.
public struct SecretBytes: ~Copyable, @unchecked Sendable {
    private let base: UnsafeMutablePointer<UInt8>
    /// Bytes held.
    public let count: Int

    /// `count` zero bytes.
    public init(count: Int) {
        precondition(count >= 0, "SecretBytes: negative size")
        self.count = count
        base = .allocate(capacity: max(count, 1))
        base.initialize(repeating: 0, count: max(count, 1))
    }

    /// A copy of bytes that are not themselves secret (a test vector, a hex string being parsed
    /// byte by byte), or that the caller wipes.
    public init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        // Contiguous bytes (arrays, buffer slices) in one copy: walking a generic collection
        // from another module element by element goes through unspecialized code that
        // allocates on every step.
        let copied: Void? = bytes.withContiguousStorageIfAvailable { source in
            if let from = source.baseAddress { base.update(from: from, count: source.count) }
        }
        if copied == nil {
            var i = 0
            for b in bytes { base[i] = b; i += 1 }
        }
    }

    /// `count` bytes filled by `body`, which writes into the buffer in place.
    public init<E: Error>(count: Int, filling body: (UnsafeMutableBufferPointer<UInt8>) throws(E) -> Void) throws(E) {
        self.init(count: count)
        try body(UnsafeMutableBufferPointer(start: base, count: count))
    }

    deinit {
        SecretBytes.wipe(UnsafeMutableRawPointer(base), max(count, 1))
        base.deallocate()
    }

    /// Overwrites memory with zeros in a way the optimizer cannot drop.
    public static func wipe(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
        #if canImport(Glibc)
        explicit_bzero(pointer, count)
        #else
        memset_s(pointer, count, 0, count)
        #endif
    }

    public subscript(index: Int) -> UInt8 {
        get {
            precondition(index >= 0 && index < count, "SecretBytes: index out of range")
            return base[index]
        }
        set {
            precondition(index >= 0 && index < count, "SecretBytes: index out of range")
            base[index] = newValue
        }
    }

    public var isEmpty: Bool { count == 0 }

    public func withUnsafeBytes<R: ~Copyable, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeBufferPointer(start: base, count: count))
    }

    public mutating func withUnsafeMutableBytes<R: ~Copyable, E: Error>(_ body: (UnsafeMutableBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableBufferPointer(start: base, count: count))
    }

    /// A new buffer holding bytes `range` of this one.
    public func slice(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "SecretBytes: slice out of range")
        return SecretBytes(count: range.count) { out in
            for i in 0..<range.count { out[i] = base[range.lowerBound + i] }
        }
    }

    /// A new buffer holding these bytes followed by `other`'s.
    public func appending(_ other: borrowing SecretBytes) -> SecretBytes {
        let n = count
        return SecretBytes(count: n + other.count) { out in
            for i in 0..<n { out[i] = base[i] }
            other.withUnsafeBytes { o in for i in 0..<o.count { out[n + i] = o[i] } }
        }
    }

    /// A copy with zero bytes added up to a multiple of `block` (at least one block when
    /// `count` is 0 is not added: an empty buffer stays empty).
    public func zeroPadded(toMultipleOf block: Int) -> SecretBytes {
        precondition(block > 0)
        let padded = (count + block - 1) / block * block
        return SecretBytes(count: padded) { out in
            for i in 0..<count { out[i] = base[i] }
        }
    }

    /// Whether both hold the same bytes; the time taken does not depend on where they differ.
    public func constantTimeEquals(_ other: borrowing SecretBytes) -> Bool {
        guard count == other.count else { return false }
        var diff: UInt8 = 0
        other.withUnsafeBytes { o in for i in 0..<count { diff |= base[i] ^ o[i] } }
        return diff == 0
    }

    /// Whether the bytes equal `bytes` (for tests and for comparing with a public value).
    public func equals(_ bytes: some Collection<UInt8>) -> Bool {
        guard count == bytes.count else { return false }
        var diff: UInt8 = 0
        var i = 0
        for b in bytes { diff |= base[i] ^ b; i += 1 }
        return diff == 0
    }

    /// Uppercase hex. Only for key material a developer tool prints on request and for values
    /// that are not secret once computed (a ciphertext held here on its way out).
    public func hexString() -> String {
        withUnsafeBytes { Hex.encode($0) }
    }

    /// Uppercase hex digits in a wiped buffer (a key written to its file).
    public func hexDigits() -> SecretBytes {
        SecretBytes(count: count * 2) { out in
            for i in 0..<count {
                out[2 * i] = Hex.digits[Int(base[i] >> 4)]
                out[2 * i + 1] = Hex.digits[Int(base[i] & 15)]
            }
        }
    }
}

/// Why a hex string is not the bytes it should be.
public enum HexError: Error, Sendable, Hashable, CustomStringConvertible {
    case oddLength(Int)
    case notHex(position: Int)
    case wrongLength(expected: [Int], got: Int)

    public var description: String {
        switch self {
        case .oddLength(let n): "has \(n) hex digits; an even number is needed"
        case .notHex(let p): "has a character that is not a hex digit at position \(p + 1)"
        case .wrongLength(let expected, let got):
            "has \(got) bytes; expected \(expected.map(String.init).joined(separator: " or "))"
        }
    }
}

public enum Hex {
    static let digits = Array("0123456789ABCDEF".utf8)

    /// The value of one ASCII hex digit (either case).
    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }

    /// Bytes from hex digits (either case; spaces are not allowed).
    public static func decode(_ text: some StringProtocol) throws(HexError) -> [UInt8] {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]) else { throw .notHex(position: i) }
            guard let lo = nibble(utf8[i + 1]) else { throw .notHex(position: i + 1) }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    /// Secret bytes from hex digits, parsed straight into the wiped buffer.
    public static func decodeSecret(_ text: some StringProtocol, lengths: [Int]) throws(HexError) -> SecretBytes {
        try decodeSecret(digits: text.utf8, lengths: lengths)
    }

    /// Secret bytes from ASCII hex digits held anywhere (a key file's wiped contents).
    public static func decodeSecret(digits utf8: some Collection<UInt8>, lengths: [Int]) throws(HexError) -> SecretBytes {
        guard utf8.count % 2 == 0 else { throw .oddLength(utf8.count) }
        guard lengths.contains(utf8.count / 2) else { throw .wrongLength(expected: lengths, got: utf8.count / 2) }
        var result: HexError?
        let bytes = SecretBytes(count: utf8.count / 2) { out in
            var i = 0
            var hi: UInt8 = 0
            for c in utf8 {
                guard let n = nibble(c) else { result = .notHex(position: i); return }
                if i % 2 == 0 { hi = n } else { out[i / 2] = hi << 4 | n }
                i += 1
            }
        }
        if let result { throw result }
        return bytes
    }

    /// Uppercase hex of bytes.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A `SecretBytes` that several owners can hold (a track of a swipe on its way from the decoder
/// to encryption): shared by reference, so the bytes still exist once, and wiped when the last
/// holder lets go.
public final class SecretText: Sendable {
    public let bytes: SecretBytes

    public init(_ bytes: consuming SecretBytes) {
        self.bytes = bytes
    }

    /// Bytes copied from a collection that is not itself secret (tests, test vectors).
    public convenience init(copying bytes: some Collection<UInt8>) {
        self.init(SecretBytes(copying: bytes))
    }

    public var count: Int { bytes.count }

    /// The bytes as a `String`, which cannot be wiped: only for the developer tools that print
    /// clear data on request (`decode --reveal`, `posminictl decrypt`), the benchmark and tests.
    public func revealed() -> String {
        bytes.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
    }
}

extension SecretText: Hashable {
    /// Same bytes (constant time for equal lengths).
    public static func == (a: SecretText, b: SecretText) -> Bool { a === b || a.bytes.constantTimeEquals(b.bytes) }

    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}
