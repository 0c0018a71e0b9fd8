import COpenSSL
public import Secrets

/// Triple DES through libcrypto's `DES-EDE3` (single DES is EDE3 with the key three times,
/// since OpenSSL 3 keeps plain DES only in its legacy provider).
enum TDES {
    /// The 24-byte EDE3 key for an 8- (single DES), 16- (two-key) or 24-byte key.
    static func ede3Key(_ key: borrowing SecretBytes) throws(DUKPTError) -> SecretBytes {
        switch key.count {
        case 8: return SecretBytes(count: 24) { out in for i in 0..<24 { out[i] = key[i % 8] } }
        case 16: return SecretBytes(count: 24) { out in for i in 0..<24 { out[i] = key[i % 16] } }
        case 24: return key.slice(0..<24)
        default: throw .keyLength(key.count, expected: [8, 16, 24])
        }
    }

    /// ECB over the 8-byte blocks of `data[range]`, in place.
    static func ecb(_ data: inout SecretBytes, range: Range<Int>, key: borrowing SecretBytes, encrypt: Bool) throws(DUKPTError) {
        guard range.count % 8 == 0 else { throw .ciphertextLength(range.count, block: 8) }
        let full = try ede3Key(key)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw .cipher("EVP_CIPHER_CTX_new failed") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let ok = full.withUnsafeBytes { k in
            EVP_CipherInit_ex(ctx, EVP_des_ede3_ecb(), nil, k.baseAddress, nil, encrypt ? 1 : 0) == 1
                && EVP_CIPHER_CTX_set_padding(ctx, 0) == 1
        }
        guard ok else { throw .cipher("DES-EDE3 set-up refused") }
        let done = data.withUnsafeMutableBytes { buffer -> Bool in
            var written: Int32 = 0
            let p = buffer.baseAddress! + range.lowerBound
            return EVP_CipherUpdate(ctx, p, &written, p, Int32(range.count)) == 1 && Int(written) == range.count
        }
        guard done else { throw .cipher("DES-EDE3 refused the data") }
    }

    /// CBC with a zero IV over whole blocks, in place.
    static func cbc(_ data: inout SecretBytes, key: borrowing SecretBytes, encrypt: Bool) throws(DUKPTError) {
        let full = try ede3Key(key)
        try DUKPT.cbc(&data, blockSize: 8, encrypt: encrypt) { (block: inout SecretBytes, offset: Int) throws(DUKPTError) in
            try ecb(&block, range: offset..<offset + 8, key: full, encrypt: encrypt)
        }
    }
}

/// TDES DUKPT, ANSI X9.24-1-2009: a 10-byte KSN whose last 21 bits are the transaction
/// counter (at most 10 one-bits), double-length keys.
public enum TDESDUKPT {
    public static let ksnLength = 10
    /// The highest counter value with at most 10 one-bits in 21 bits.
    public static let lastCounter: UInt32 = 0x1F_F800
    public static let maximumOneBits = 10
    static let counterMask: UInt32 = 0x1F_FFFF
    static let keyMask: [UInt8] = [0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0, 0xC0, 0xC0, 0xC0, 0xC0, 0, 0, 0, 0]
    static let dataVariant: [UInt8] = [0, 0, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0, 0]

    public static func isValidCounter(_ counter: UInt32) -> Bool {
        counter != 0 && counter <= counterMask && counter.nonzeroBitCount <= maximumOneBits
    }

    public static func counter(after counter: UInt32) -> UInt32? {
        nextCounter(after: counter, last: lastCounter, maximumOneBits: maximumOneBits)
    }

    /// The KSN's counter.
    public static func counter(of ksn: [UInt8]) throws(DUKPTError) -> UInt32 {
        guard ksn.count == ksnLength else { throw .ksnLength(ksn.count, expected: ksnLength) }
        return ksn[7..<10].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & counterMask
    }

    /// The KSN with its counter replaced.
    public static func ksn(initial: [UInt8], counter: UInt32) -> [UInt8] {
        var k = initial
        k[7] = k[7] & 0xE0 | UInt8(counter >> 16 & 0x1F)
        k[8] = UInt8(counter >> 8 & 0xFF)
        k[9] = UInt8(counter & 0xFF)
        return k
    }

    /// The initial PIN encryption key (IPEK) for the device a KSN names.
    public static func ipek(bdk: borrowing SecretBytes, ksn: [UInt8]) throws(DUKPTError) -> SecretBytes {
        guard bdk.count == 16 else { throw .keyLength(bdk.count, expected: [16]) }
        guard ksn.count == ksnLength else { throw .ksnLength(ksn.count, expected: ksnLength) }
        // The KSN's leftmost 8 bytes with the counter bits cleared, in both halves.
        var base = Array(ksn[0..<8])
        base[7] &= 0xE0
        var out = SecretBytes(count: 16)
        for i in 0..<16 { out[i] = base[i % 8] }
        var masked = bdk.slice(0..<16)
        for i in 0..<16 { masked[i] ^= keyMask[i] }
        try TDES.ecb(&out, range: 0..<8, key: bdk, encrypt: true)
        try TDES.ecb(&out, range: 8..<16, key: masked, encrypt: true)
        return out
    }

    /// The transaction key for the KSN's counter: the non-reversible key generation process
    /// once per one-bit of the counter, from the most significant down.
    public static func transactionKey(ipek: borrowing SecretBytes, ksn: [UInt8]) throws(DUKPTError) -> SecretBytes {
        guard ipek.count == 16 else { throw .keyLength(ipek.count, expected: [16]) }
        let counter = try counter(of: ksn)
        guard isValidCounter(counter) else { throw .invalidCounter(counter) }
        // The KSN's rightmost 8 bytes with the counter cleared.
        var register = Array(ksn[2..<10])
        register[5] &= 0xE0
        register[6] = 0
        register[7] = 0
        var key = ipek.slice(0..<16)
        var bit: UInt32 = 1 << 20
        while bit != 0 {
            if counter & bit != 0 {
                register[5] |= UInt8(bit >> 16 & 0xFF)
                register[6] |= UInt8(bit >> 8 & 0xFF)
                register[7] |= UInt8(bit & 0xFF)
                key = try nonReversible(key, data: register)
            }
            bit >>= 1
        }
        return key
    }

    /// One step of the non-reversible key generation process.
    static func nonReversible(_ key: borrowing SecretBytes, data: [UInt8]) throws(DUKPTError) -> SecretBytes {
        func half(_ k: borrowing SecretBytes) throws(DUKPTError) -> SecretBytes {
            var block = SecretBytes(count: 8)
            for i in 0..<8 { block[i] = data[i] ^ k[8 + i] }
            let left = k.slice(0..<8)
            try TDES.ecb(&block, range: 0..<8, key: left, encrypt: true)
            for i in 0..<8 { block[i] ^= k[8 + i] }
            return block
        }
        let right = try half(key)
        var masked = key.slice(0..<16)
        for i in 0..<16 { masked[i] ^= keyMask[i] }
        let left = try half(masked)
        return left.appending(right)
    }

    /// The data-encryption key: the data-request variant of the transaction key, encrypted
    /// with itself.
    public static func dataKey(transactionKey: borrowing SecretBytes) throws(DUKPTError) -> SecretBytes {
        guard transactionKey.count == 16 else { throw .keyLength(transactionKey.count, expected: [16]) }
        var variant = transactionKey.slice(0..<16)
        for i in 0..<16 { variant[i] ^= dataVariant[i] }
        var out = variant.slice(0..<16)
        try TDES.ecb(&out, range: 0..<16, key: variant, encrypt: true)
        return out
    }

    /// TDES-CBC with a zero IV, in place.
    public static func encryptCBC(_ data: inout SecretBytes, key: borrowing SecretBytes) throws(DUKPTError) {
        try TDES.cbc(&data, key: key, encrypt: true)
    }

    public static func decryptCBC(_ data: inout SecretBytes, key: borrowing SecretBytes) throws(DUKPTError) {
        try TDES.cbc(&data, key: key, encrypt: false)
    }
}
