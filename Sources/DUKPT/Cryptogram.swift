public import Secrets

/// The encryption schemes of card events.
public enum DUKPTScheme: String, Sendable, Hashable, CaseIterable {
    case aes128 = "aes128-dukpt"
    case tdes = "tdes-dukpt"

    /// Bytes of the key identifier: the AES Initial Key ID, or the TDES initial KSN.
    public var keyIDLength: Int { self == .aes128 ? AESDUKPT.ikidLength : TDESDUKPT.ksnLength }
    public var ksnLength: Int { self == .aes128 ? AESDUKPT.ksnLength : TDESDUKPT.ksnLength }
    public var blockSize: Int { self == .aes128 ? 16 : 8 }

    public func isValidCounter(_ counter: UInt32) -> Bool {
        self == .aes128 ? AESDUKPT.isValidCounter(counter) : TDESDUKPT.isValidCounter(counter)
    }

    public func counter(after counter: UInt32) -> UInt32? {
        self == .aes128 ? AESDUKPT.counter(after: counter) : TDESDUKPT.counter(after: counter)
    }

    /// The key identifier in canonical form: a TDES KSN with its counter cleared.
    public func normalizedKeyID(_ id: [UInt8]) throws(DUKPTError) -> [UInt8] {
        guard id.count == keyIDLength else {
            if self == .aes128 { throw .ikidLength(id.count) }
            throw .ksnLength(id.count, expected: TDESDUKPT.ksnLength)
        }
        return self == .aes128 ? id : TDESDUKPT.ksn(initial: id, counter: 0)
    }

    public func ksn(keyID: [UInt8], counter: UInt32) -> [UInt8] {
        self == .aes128 ? AESDUKPT.ksn(ikid: keyID, counter: counter) : TDESDUKPT.ksn(initial: keyID, counter: counter)
    }

    /// Splits a KSN into key identifier and counter.
    public func parseKSN(_ ksn: [UInt8]) throws(DUKPTError) -> (keyID: [UInt8], counter: UInt32) {
        switch self {
        case .aes128:
            let (ikid, counter) = try AESDUKPT.parseKSN(ksn)
            return (ikid, counter)
        case .tdes:
            let counter = try TDESDUKPT.counter(of: ksn)
            return (TDESDUKPT.ksn(initial: ksn, counter: 0), counter)
        }
    }
}

/// A reader's initial key: the AES-128 initial key and its IKID, or the TDES IPEK and its
/// initial KSN. What the daemon holds; the BDK never leaves the HSM.
public struct DeviceKey: ~Copyable, Sendable {
    public let scheme: DUKPTScheme
    public let key: SecretBytes
    /// AES: the Initial Key ID (8 bytes). TDES: the initial KSN, counter cleared (10 bytes).
    public let keyID: [UInt8]

    public init(scheme: DUKPTScheme, key: consuming SecretBytes, keyID: [UInt8]) throws(DUKPTError) {
        guard key.count == 16 else { throw .keyLength(key.count, expected: [16]) }
        self.keyID = try scheme.normalizedKeyID(keyID)
        self.scheme = scheme
        self.key = key
    }

    /// Derives the device key from a BDK (labs and tests; production injects initial keys).
    public static func derive(scheme: DUKPTScheme, bdk: borrowing SecretBytes, keyID: [UInt8]) throws(DUKPTError) -> DeviceKey {
        let id = try scheme.normalizedKeyID(keyID)
        switch scheme {
        case .aes128:
            guard bdk.count == 16 else { throw .keyLength(bdk.count, expected: [16]) }
            return try DeviceKey(scheme: scheme, key: AESDUKPT.initialKey(bdk: bdk, ikid: id), keyID: id)
        case .tdes:
            return try DeviceKey(scheme: scheme, key: TDESDUKPT.ipek(bdk: bdk, ksn: id), keyID: id)
        }
    }

    public func ksn(counter: UInt32) -> [UInt8] { scheme.ksn(keyID: keyID, counter: counter) }

    /// Encrypts each track (its text zero-padded to the cipher block) under the data key of
    /// `counter`; the clear bytes are copied only into the wiped buffer that is encrypted in
    /// place. AES adds a CMAC under the MAC-generation key (see `Cryptogram.macInput`).
    public func encrypt(tracks: [(number: Int, text: SecretText)], counter: UInt32) throws(DUKPTError) -> Cryptogram {
        let ksn = ksn(counter: counter)
        let keys = try transactionKeys(counter: counter)
        var out: [Cryptogram.Track] = []
        for track in tracks.sorted(by: { $0.number < $1.number }) {
            var block = track.text.bytes.zeroPadded(toMultipleOf: scheme.blockSize)
            try scheme.cbc(&block, key: keys.data, encrypt: true)
            out.append(Cryptogram.Track(number: track.number, ciphertext: block.withUnsafeBytes { Array($0) }))
        }
        var mac: [UInt8]?
        if let macKey = keys.mac { mac = try AESDUKPT.cmac(Cryptogram.macInput(ksn: ksn, tracks: out), key: macKey) }
        return Cryptogram(scheme: scheme, ksn: ksn, tracks: out, mac: mac)
    }

    /// The keys of one transaction: data encryption (AES usage `3000`, or the TDES data
    /// variant encrypted with itself) and, for AES, MAC generation (usage `2000`).
    func transactionKeys(counter: UInt32) throws(DUKPTError) -> TransactionKeys {
        guard scheme.isValidCounter(counter) else { throw .invalidCounter(counter) }
        switch scheme {
        case .aes128:
            let tk = try AESDUKPT.transactionKey(initialKey: key, ikid: keyID, counter: counter)
            return TransactionKeys(
                data: try AESDUKPT.workingKey(transactionKey: tk, usage: .dataEncryptionEncrypt, type: .aes128, ikid: keyID, counter: counter),
                mac: try AESDUKPT.workingKey(transactionKey: tk, usage: .macGeneration, type: .aes128, ikid: keyID, counter: counter))
        case .tdes:
            let tk = try TDESDUKPT.transactionKey(ipek: key, ksn: ksn(counter: counter))
            return TransactionKeys(data: try TDESDUKPT.dataKey(transactionKey: tk), mac: nil)
        }
    }
}

/// The working keys of one transaction.
struct TransactionKeys: ~Copyable {
    let data: SecretBytes
    let mac: SecretBytes?
}

extension DUKPTScheme {
    /// The scheme's block cipher in CBC mode with a zero IV, in place.
    func cbc(_ data: inout SecretBytes, key: borrowing SecretBytes, encrypt: Bool) throws(DUKPTError) {
        switch self {
        case .aes128: try AESDUKPT.cbc(&data, key: key, encrypt: encrypt)
        case .tdes: try TDES.cbc(&data, key: key, encrypt: encrypt)
        }
    }
}

/// Encrypted tracks as a card event carries them.
public struct Cryptogram: Sendable, Hashable {
    public var scheme: DUKPTScheme
    public var ksn: [UInt8]
    /// Ascending track number.
    public var tracks: [Track]
    /// AES: CMAC over `macInput`. TDES: none.
    public var mac: [UInt8]?

    public struct Track: Sendable, Hashable {
        public var number: Int
        public var ciphertext: [UInt8]
        public init(number: Int, ciphertext: [UInt8]) {
            self.number = number
            self.ciphertext = ciphertext
        }
    }

    public init(scheme: DUKPTScheme, ksn: [UInt8], tracks: [Track], mac: [UInt8]?) {
        self.scheme = scheme
        self.ksn = ksn
        self.tracks = tracks.sorted { $0.number < $1.number }
        self.mac = mac
    }

    /// The MAC's input: the KSN, then for each track in ascending order one byte of track number,
    /// two bytes (big-endian) of ciphertext length, and the ciphertext.
    public static func macInput(ksn: [UInt8], tracks: [Track]) -> [UInt8] {
        var m = ksn
        for t in tracks.sorted(by: { $0.number < $1.number }) {
            m.append(UInt8(t.number))
            m.append(UInt8(t.ciphertext.count >> 8 & 0xFF))
            m.append(UInt8(t.ciphertext.count & 0xFF))
            m += t.ciphertext
        }
        return m
    }

    /// What a processor does: the key from the BDK and the KSN, the MAC checked, the tracks
    /// decrypted (zero padding removed). Clear card data: for developer tools only.
    public func decrypt(bdk: borrowing SecretBytes) throws(DUKPTError) -> [(number: Int, text: SecretText)] {
        let (keyID, counter) = try scheme.parseKSN(ksn)
        let keys = try DeviceKey.derive(scheme: scheme, bdk: bdk, keyID: keyID).transactionKeys(counter: counter)
        if let macKey = keys.mac {
            let expected = try AESDUKPT.cmac(Cryptogram.macInput(ksn: ksn, tracks: tracks), key: macKey)
            guard let mac else { throw .macMissing }
            guard SecretBytes(copying: mac).equals(expected) else { throw .macMismatch }
        }
        var result: [(number: Int, text: SecretText)] = []
        for t in tracks {
            var block = SecretBytes(copying: t.ciphertext)
            try scheme.cbc(&block, key: keys.data, encrypt: false)
            result.append((t.number, SecretText(Cryptogram.unpadded(block))))
        }
        return result
    }

    /// The bytes without trailing zero padding.
    static func unpadded(_ block: consuming SecretBytes) -> SecretBytes {
        var end = block.count
        while end > 0 && block[end - 1] == 0 { end -= 1 }
        return block.slice(0..<end)
    }

    /// Decrypts a raw TDES cryptogram (a classic reader's field) without unpadding.
    public static func decryptTDES(bdk: borrowing SecretBytes, ksn: [UInt8], data: [UInt8]) throws(DUKPTError) -> SecretBytes {
        guard data.count % 8 == 0, !data.isEmpty else { throw .ciphertextLength(data.count, block: 8) }
        let keys = try DeviceKey.derive(scheme: .tdes, bdk: bdk, keyID: ksn).transactionKeys(counter: TDESDUKPT.counter(of: ksn))
        var block = SecretBytes(copying: data)
        try TDESDUKPT.decryptCBC(&block, key: keys.data)
        return block
    }
}
