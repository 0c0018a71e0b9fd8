import COpenSSL
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
        let cipher = try AESBlocks(key: key, encrypt: true)
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
            try cipher.apply(&block, offset: 0)
            for i in 0..<min(16, length - index * 16) { out[index * 16 + i] = block[i] }
        }
        return out
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
        let cipher = try AESBlocks(key: key, encrypt: encrypt)
        try DUKPT.cbc(&data, blockSize: 16, encrypt: encrypt) { (block: inout SecretBytes, offset: Int) throws(DUKPTError) in
            try cipher.apply(&block, offset: offset)
        }
    }

    /// AES-CMAC (NIST SP 800-38B, RFC 4493; full 16 bytes) through libcrypto's `CMAC` MAC.
    public static func cmac(_ message: [UInt8], key: borrowing SecretBytes) throws(DUKPTError) -> [UInt8] {
        guard let type = AESKeyType(byteCount: key.count) else { throw .keyLength(key.count, expected: [16, 24, 32]) }
        guard let algorithm = EVP_MAC_fetch(nil, "CMAC", nil) else { throw .cipher("libcrypto offers no CMAC") }
        defer { EVP_MAC_free(algorithm) }
        guard let context = EVP_MAC_CTX_new(algorithm) else { throw .cipher("EVP_MAC_CTX_new failed") }
        defer { EVP_MAC_CTX_free(context) }      // wipes the key it holds
        var tag = [UInt8](repeating: 0, count: 16)
        var length = 0
        let cipherName = "AES-\(type.byteCount * 8)-CBC"
        let done = key.withUnsafeBytes { k in
            "cipher".withCString { field in
                cipherName.withCString { value in
                    var parameters = [OSSL_PARAM_construct_utf8_string(field, UnsafeMutablePointer(mutating: value), 0),
                                      OSSL_PARAM_construct_end()]
                    return EVP_MAC_init(context, k.baseAddress, k.count, &parameters) == 1
                        && message.withUnsafeBufferPointer { EVP_MAC_update(context, $0.baseAddress, $0.count) } == 1
                        && EVP_MAC_final(context, &tag, &length, 16) == 1 && length == 16
                }
            }
        }
        guard done else { throw .cipher("AES-CMAC refused") }
        return tag
    }
}

/// One AES key's ECB context in libcrypto: 16-byte blocks encrypted (or decrypted) in place.
/// The key schedule lives in the context, which libcrypto wipes when it is freed.
final class AESBlocks {
    private let context: OpaquePointer

    init(key: borrowing SecretBytes, encrypt: Bool) throws(DUKPTError) {
        let cipher: OpaquePointer? = switch key.count {
        case 16: EVP_aes_128_ecb()
        case 24: EVP_aes_192_ecb()
        case 32: EVP_aes_256_ecb()
        default: nil
        }
        guard let cipher else { throw .keyLength(key.count, expected: [16, 24, 32]) }
        guard let context = EVP_CIPHER_CTX_new() else { throw .cipher("EVP_CIPHER_CTX_new failed") }
        let ready = key.withUnsafeBytes { k in
            EVP_CipherInit_ex(context, cipher, nil, k.baseAddress, nil, encrypt ? 1 : 0) == 1
                && EVP_CIPHER_CTX_set_padding(context, 0) == 1
        }
        guard ready else {
            EVP_CIPHER_CTX_free(context)
            throw .cipher("AES set-up refused")
        }
        self.context = context
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// The block at `offset`, in place.
    func apply(_ data: inout SecretBytes, offset: Int) throws(DUKPTError) {
        let done = data.withUnsafeMutableBytes { buffer -> Bool in
            var written: Int32 = 0
            let p = buffer.baseAddress! + offset
            return EVP_CipherUpdate(context, p, &written, p, 16) == 1 && written == 16
        }
        guard done else { throw .cipher("AES refused the block") }
    }
}
