import Crypto
import CryptoExtras
public import Secrets

/// AES key sizes of ANSI X9.24-3 and their codes in the derivation data.
public enum AESKeyType: Sendable, Hashable, CaseIterable {
    case aes128, aes192, aes256

    public var byteCount: Int {
        switch self {
        case .aes128: 16
        case .aes192: 24
        case .aes256: 32
        }
    }

    var algorithmCode: UInt16 {
        switch self {
        case .aes128: 0x0002
        case .aes192: 0x0003
        case .aes256: 0x0004
        }
    }

    public init?(byteCount: Int) {
        guard let type = AESKeyType.allCases.first(where: { $0.byteCount == byteCount }) else { return nil }
        self = type
    }
}

/// Key usage indicators of X9.24-3 derivation data.
public enum AESKeyUsage: UInt16, Sendable, Hashable {
    case pinEncryption = 0x1000
    case macGeneration = 0x2000
    case macVerification = 0x2001
    case dataEncryptionEncrypt = 0x3000
    case dataEncryptionDecrypt = 0x3001
    case keyDerivation = 0x8000
    case initialKey = 0x8001
}

/// AES DUKPT, ANSI X9.24-3-2017: the 12-byte KSN is the 8-byte Initial Key ID (BDK ID ‖
/// derivation ID) followed by a 32-bit big-endian transaction counter with at most 16 one-bits.
public enum AESDUKPT {
    public static let ikidLength = 8
    public static let ksnLength = 12
    /// The highest counter value; every value above it has more than 16 one-bits.
    public static let lastCounter: UInt32 = 0xFFFF_0000
    /// The most one-bits a counter may have.
    public static let maximumOneBits = 16

    /// Whether the scheme uses this counter value.
    public static func isValidCounter(_ counter: UInt32) -> Bool {
        counter != 0 && counter.nonzeroBitCount <= maximumOneBits
    }

    /// The first usable counter after `counter`, or nil when the key is exhausted.
    public static func counter(after counter: UInt32) -> UInt32? {
        nextCounter(after: counter, last: lastCounter, maximumOneBits: maximumOneBits)
    }

    /// KSN: Initial Key ID followed by the counter, big-endian.
    public static func ksn(ikid: [UInt8], counter: UInt32) -> [UInt8] {
        ikid + bigEndianBytes(counter)
    }

    /// Splits a KSN into Initial Key ID and counter.
    public static func parseKSN(_ ksn: [UInt8]) throws(DUKPTError) -> (ikid: [UInt8], counter: UInt32) {
        guard ksn.count == ksnLength else { throw .ksnLength(ksn.count, expected: ksnLength) }
        let c = ksn[8..<12].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return (Array(ksn[0..<8]), c)
    }

    /// The initial key a device holds: derived from the BDK with usage `8001` and the IKID.
    public static func initialKey(bdk: borrowing SecretBytes, ikid: [UInt8]) throws(DUKPTError) -> SecretBytes {
        guard let type = AESKeyType(byteCount: bdk.count) else { throw .keyLength(bdk.count, expected: [16, 24, 32]) }
        guard ikid.count == ikidLength else { throw .ikidLength(ikid.count) }
        return try derive(bdk, usage: .initialKey, type: type, tail: ikid)
    }

    /// The transaction key for `counter`: one derivation from the initial key per one-bit of the
    /// counter, from the most significant down.
    public static func transactionKey(initialKey: borrowing SecretBytes, ikid: [UInt8], counter: UInt32) throws(DUKPTError) -> SecretBytes {
        guard let type = AESKeyType(byteCount: initialKey.count) else { throw .keyLength(initialKey.count, expected: [16, 24, 32]) }
        guard ikid.count == ikidLength else { throw .ikidLength(ikid.count) }
        guard isValidCounter(counter) else { throw .invalidCounter(counter) }
        var key = initialKey.slice(0..<initialKey.count)
        var working: UInt32 = 0
        var bit: UInt32 = 1 << 31
        while bit != 0 {
            if counter & bit != 0 {
                working |= bit
                key = try derive(key, usage: .keyDerivation, type: type, tail: tail(ikid: ikid, counter: working))
            }
            bit >>= 1
        }
        return key
    }

    /// A working key of the transaction key for one purpose.
    public static func workingKey(transactionKey: borrowing SecretBytes, usage: AESKeyUsage, type: AESKeyType,
                                  ikid: [UInt8], counter: UInt32) throws(DUKPTError) -> SecretBytes {
        guard AESKeyType(byteCount: transactionKey.count) != nil else {
            throw .keyLength(transactionKey.count, expected: [16, 24, 32])
        }
        guard ikid.count == ikidLength else { throw .ikidLength(ikid.count) }
        return try derive(transactionKey, usage: usage, type: type, tail: tail(ikid: ikid, counter: counter))
    }

    /// Derivation ID (the IKID's last four bytes) ‖ counter.
    static func tail(ikid: [UInt8], counter: UInt32) -> [UInt8] {
        Array(ikid[4..<8]) + bigEndianBytes(counter)
    }

    /// X9.24-3 key derivation: AES-ECB of one derivation-data block per 16 bytes of the new key.
    static func derive(_ key: borrowing SecretBytes, usage: AESKeyUsage, type: AESKeyType, tail: [UInt8]) throws(DUKPTError) -> SecretBytes {
        let symmetric = key.withUnsafeBytes { SymmetricKey(data: UnsafeRawBufferPointer($0)) }
        let length = type.byteCount
        let bits = UInt16(length * 8)
        var block = SecretBytes(count: 16)
        var out = SecretBytes(count: length)
        for index in 0..<(length + 15) / 16 {
            block[0] = 0x01
            block[1] = UInt8(index + 1)
            block[2] = UInt8(usage.rawValue >> 8)
            block[3] = UInt8(usage.rawValue & 0xFF)
            block[4] = UInt8(type.algorithmCode >> 8)
            block[5] = UInt8(type.algorithmCode & 0xFF)
            block[6] = UInt8(bits >> 8)
            block[7] = UInt8(bits & 0xFF)
            for i in 0..<8 { block[8 + i] = tail[i] }
            try permuteBlock(&block, offset: 0, key: symmetric, forward: true)
            for i in 0..<min(16, length - index * 16) { out[index * 16 + i] = block[i] }
        }
        return out
    }

    /// AES of the 16 bytes at `offset`, in place: encryption (`forward`) or decryption.
    static func permuteBlock(_ data: inout SecretBytes, offset: Int, key: SymmetricKey, forward: Bool) throws(DUKPTError) {
        do {
            try data.withUnsafeMutableBytes { buffer in
                var block = UnsafeMutableBufferPointer(rebasing: buffer[offset..<offset + 16])
                if forward { try AES.permute(&block, key: key) } else { try AES.inversePermute(&block, key: key) }
            }
        } catch {
            throw .cipher("AES: \(error)")
        }
    }

    /// AES-CBC with a zero IV over whole blocks, in place: the clear bytes are overwritten by
    /// the ciphertext and never copied.
    public static func encryptCBC(_ data: inout SecretBytes, key: borrowing SecretBytes) throws(DUKPTError) {
        try cbc(&data, key: key, encrypt: true)
    }

    /// AES-CBC decryption with a zero IV, in place.
    public static func decryptCBC(_ data: inout SecretBytes, key: borrowing SecretBytes) throws(DUKPTError) {
        try cbc(&data, key: key, encrypt: false)
    }

    static func cbc(_ data: inout SecretBytes, key: borrowing SecretBytes, encrypt: Bool) throws(DUKPTError) {
        guard AESKeyType(byteCount: key.count) != nil else { throw .keyLength(key.count, expected: [16, 24, 32]) }
        let symmetric = key.withUnsafeBytes { SymmetricKey(data: UnsafeRawBufferPointer($0)) }
        try DUKPT.cbc(&data, blockSize: 16, encrypt: encrypt) { (block: inout SecretBytes, offset: Int) throws(DUKPTError) in
            try permuteBlock(&block, offset: offset, key: symmetric, forward: encrypt)
        }
    }

    /// AES-CMAC (full 16 bytes).
    public static func cmac(_ message: [UInt8], key: borrowing SecretBytes) throws(DUKPTError) -> [UInt8] {
        let symmetric = key.withUnsafeBytes { SymmetricKey(data: UnsafeRawBufferPointer($0)) }
        do {
            var mac = try AES.CMAC(key: symmetric)
            message.withUnsafeBytes { mac.update(bufferPointer: $0) }
            let tag = mac.finalize()
            return tag.withUnsafeBytes { Array($0) }
        } catch {
            throw .cipher("AES-CMAC: \(error)")
        }
    }
}
