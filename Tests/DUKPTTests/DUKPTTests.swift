import Testing
import DUKPT
import Secrets

func secret(_ hex: String) -> SecretBytes { SecretBytes(copying: try! Hex.decode(hex)) }
func bytes(_ hex: String) -> [UInt8] { try! Hex.decode(hex) }

/// ANSI X9.24-3-2017 AES DUKPT, against the published test vectors.
@Suite struct AESDUKPTTests {
    let bdk = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
    let ikid = bytes("1234567890123456")

    @Test func initialKey() throws {
        let ik = try AESDUKPT.initialKey(bdk: secret(bdk), ikid: ikid)
        let ikHexstring = ik.hexString()
        #expect(ikHexstring == "1273671EA26AC29AFA4D1084127652A1")
    }

    @Test func initialKeyAES256() throws {
        let ik = try AESDUKPT.initialKey(bdk: secret(bdk + bdk), ikid: ikid)
        let ikHexstring = ik.hexString()
        #expect(ikHexstring == "CE9CE0C101D1138F97FB6CAD4DF045A7083D4EAE2D35A31789D01CCF0949550F")
    }

    @Test(arguments: [
        (UInt32(1), "4F21B565BAD9835E112B6465635EAE44"),
        (2, "2F34D68DE10F68D38091A73B9E7C437C"),
        (3, "031504E530365CF81264238540518318"),
        (8, "718EE6CF0B27E53D5F7AF99C4D8146A2"),
        (0x0001_FFFE, "E21E8C8D347F8561A2BE752DAA85A111"),
        (0x0002_0000, "F7AE9025468A25D37B7249CFFED224C8"),
        (0xFFFF_0000, "F6BA59389BD14A9855BE9727E7C52E3C"),
    ])
    func transactionKey(counter: UInt32, expected: String) throws {
        let ik = try AESDUKPT.initialKey(bdk: secret(bdk), ikid: ikid)
        let key = try AESDUKPT.transactionKey(initialKey: ik, ikid: ikid, counter: counter)
        let keyHex = key.hexString()
        #expect(keyHex == expected)
    }

    @Test(arguments: [
        (UInt32(1), AESKeyUsage.dataEncryptionEncrypt, "A35C412EFD41FDB98B69797C02DCD08F"),
        (2, .dataEncryptionEncrypt, "D639514AA33AC43AD9229E433D6D4E5B"),
        (3, .dataEncryptionEncrypt, "EF17F6AB45B4820C93A3DCB21BC491AD"),
        (0xFFFF_0000, .dataEncryptionEncrypt, "08878BFCC45CA5AEF6A1AB40BAC882B5"),
        (1, .macGeneration, "A2DC23DE6FDE0824A2BC321E08E4B8B7"),
        (1, .pinEncryption, "AF8CB133A78F8DC2D1359F18527593FB"),
    ])
    func workingKey(counter: UInt32, usage: AESKeyUsage, expected: String) throws {
        let ik = try AESDUKPT.initialKey(bdk: secret(bdk), ikid: ikid)
        let tk = try AESDUKPT.transactionKey(initialKey: ik, ikid: ikid, counter: counter)
        let key = try AESDUKPT.workingKey(transactionKey: tk, usage: usage, type: .aes128, ikid: ikid, counter: counter)
        let keyHex = key.hexString()
        #expect(keyHex == expected)
    }

    @Test func dataVector() throws {
        let key = secret("A35C412EFD41FDB98B69797C02DCD08F")
        var data = SecretBytes(copying: Array("4012345678909D987".utf8)).zeroPadded(toMultipleOf: 16)
        #expect(data.count == 32)
        try AESDUKPT.encryptCBC(&data, key: key)
        let dataHexstring = data.hexString()
        #expect(dataHexstring == "E5AFA5B408A3310E3D779C8A9A2AE29448BD5B4232582090DB703AF647205A79")
        try AESDUKPT.decryptCBC(&data, key: key)
        let dataEquals = data.equals(Array("4012345678909D987".utf8) + [UInt8](repeating: 0, count: 15))
        #expect(dataEquals)
    }

    @Test func counterRules() {
        #expect(!AESDUKPT.isValidCounter(0))
        #expect(AESDUKPT.isValidCounter(0xFFFF_0000))
        #expect(!AESDUKPT.isValidCounter(0xFFFF_8000))
        #expect(AESDUKPT.counter(after: 0) == 1)
        #expect(AESDUKPT.counter(after: 1) == 2)
        // 0x0000FFFF has 16 one-bits; 0x00010000 is next, and 0x0001FFFE then 0x00020000.
        #expect(AESDUKPT.counter(after: 0xFFFE) == 0xFFFF)
        #expect(AESDUKPT.counter(after: 0xFFFF) == 0x1_0000)
        #expect(AESDUKPT.counter(after: 0x1_FFFE) == 0x2_0000)
        // 0x7FFF8000 has 16 one-bits; everything up to 0x80000000 has more.
        #expect(AESDUKPT.counter(after: 0x7FFF_8000) == 0x8000_0000)
        #expect(AESDUKPT.counter(after: 0xFFFE_FFFF) == nil || AESDUKPT.counter(after: 0xFFFE_FFFF) == 0xFFFF_0000)
        #expect(AESDUKPT.counter(after: 0xFFFF_0000) == nil)
    }

    @Test func everyNextCounterIsTheSmallestValidOne() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let start = UInt32.random(in: 0..<0xFFFF_0000, using: &rng)
            guard let next = AESDUKPT.counter(after: start) else { Issue.record("exhausted early after \(start)"); continue }
            #expect(next > start && AESDUKPT.isValidCounter(next))
            // Spot-check the gap: no valid value in between (sampled when the gap is large).
            let gap = next - start
            let probes: [UInt32] = gap <= 64 ? Array(1..<gap) : (0..<64).map { _ in UInt32.random(in: 1..<gap, using: &rng) }
            for p in probes { #expect(!AESDUKPT.isValidCounter(start + p)) }
        }
    }

    @Test func sixteenOneBitCounters() throws {
        let ik = try AESDUKPT.initialKey(bdk: secret(bdk), ikid: ikid)
        let a = try AESDUKPT.transactionKey(initialKey: ik, ikid: ikid, counter: 0xFFFF_0000)
        let b = try AESDUKPT.transactionKey(initialKey: ik, ikid: ikid, counter: 0x0000_FFFF)
        let aConstanttimeequals = a.constantTimeEquals(b)
        #expect(!aConstanttimeequals)
        #expect(throws: DUKPTError.invalidCounter(0x0001_FFFF)) {
            _ = try AESDUKPT.transactionKey(initialKey: ik, ikid: ikid, counter: 0x0001_FFFF)
        }
        #expect(throws: DUKPTError.invalidCounter(0)) {
            _ = try AESDUKPT.transactionKey(initialKey: ik, ikid: ikid, counter: 0)
        }
    }

    @Test func refusesBadLengths() {
        #expect(throws: DUKPTError.keyLength(15, expected: [16, 24, 32])) {
            _ = try AESDUKPT.initialKey(bdk: SecretBytes(count: 15), ikid: ikid)
        }
        #expect(throws: DUKPTError.ikidLength(7)) {
            _ = try AESDUKPT.initialKey(bdk: secret(bdk), ikid: Array(ikid.prefix(7)))
        }
        var odd = SecretBytes(count: 17)
        #expect(throws: DUKPTError.ciphertextLength(17, block: 16)) {
            try AESDUKPT.encryptCBC(&odd, key: secret(bdk))
        }
    }
}

/// AES-CMAC (the CARD's MAC) against RFC 4493's examples, and the AES block cipher against
/// FIPS-197's example vector (both through libcrypto).
@Suite struct AESPrimitiveTests {
    let key = "2B7E151628AED2A6ABF7158809CF4F3C"
    let message = "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E5130C81C46A35CE411E5FBC1191A0A52EFF69F2445DF4F9B17AD2B417BE66C3710"

    @Test(arguments: [
        (0, "BB1D6929E95937287FA37D129B756746"), (16, "070A16B46B4D4144F79BDD9DD04A287C"),
        (40, "DFA66747DE9AE63030CA32611497C827"), (64, "51F0BEBF7E3B9D92FC49741779363CFE"),
    ])
    func cmac(length: Int, tag: String) throws {
        let mac = try AESDUKPT.cmac(Array(bytes(message).prefix(length)), key: secret(key))
        #expect(Hex.encode(mac) == tag)
        var tampered = Array(bytes(message).prefix(length)) + [0]
        tampered[0] ^= 1
        #expect(Hex.encode(try AESDUKPT.cmac(tampered, key: secret(key))) != tag)
    }

    @Test func cmacRefusesABadKey() {
        #expect(throws: DUKPTError.keyLength(15, expected: [16, 24, 32])) {
            _ = try AESDUKPT.cmac([1, 2, 3], key: SecretBytes(count: 15))
        }
    }

    @Test func blockCipher() throws {
        // FIPS-197 appendix C.1: AES-128.
        var block = secret("00112233445566778899AABBCCDDEEFF")
        try AESDUKPT.encryptCBC(&block, key: secret("000102030405060708090A0B0C0D0E0F"))
        #expect(block.hexString() == "69C4E0D86A7B0430D8CDB78070B4C55A")
        try AESDUKPT.decryptCBC(&block, key: secret("000102030405060708090A0B0C0D0E0F"))
        #expect(block.hexString() == "00112233445566778899AABBCCDDEEFF")
    }
}

/// ANSI X9.24-1-2009 TDES DUKPT, against the published test vectors.
@Suite struct TDESDUKPTTests {
    let bdk = "0123456789ABCDEFFEDCBA9876543210"

    @Test func ipek() throws {
        let ipek = try TDESDUKPT.ipek(bdk: secret(bdk), ksn: bytes("FFFF9876543210E00000"))
        let ipekHexstring = ipek.hexString()
        #expect(ipekHexstring == "6AC292FAA1315B4D858AB3A3D7D5933A")
        // The counter in the KSN does not change the IPEK.
        let same = try TDESDUKPT.ipek(bdk: secret(bdk), ksn: bytes("FFFF9876543210E00015"))
        let sameConstanttimeequals = same.constantTimeEquals(ipek)
        #expect(sameConstanttimeequals)
    }

    @Test(arguments: [
        ("FFFF9876543210E00001", "042666B49184CFA368DE9628D0397BC9", "448D3F076D8304036A55A3D7E0055A78"),
        ("FFFF9876543210E00002", "C46551CEF9FD24B0AA9AD834130D3BC7", "F1BE73B36135C5C26CF937D50ABBE5AF"),
        ("FFFF9876543210E00003", "0DF3D9422ACA56E547676D07AD6BADFA", "EEEEF522C67239E4A2A65FEBF4C511F4"),
        ("FFFF9876543210E00015", "E161D1956A61F6D2F37AFD7F9CC3699A", "D9AE3E62F5E3CA2C357E37F500D9F314"),
    ])
    func keys(ksn: String, key: String, data: String) throws {
        let ipek = try TDESDUKPT.ipek(bdk: secret(bdk), ksn: bytes(ksn))
        let tk = try TDESDUKPT.transactionKey(ipek: ipek, ksn: bytes(ksn))
        let tkHex = tk.hexString()
        #expect(tkHex == key)
        let dataHex = try TDESDUKPT.dataKey(transactionKey: tk).hexString()
        #expect(dataHex == data)
    }

    @Test func idTechReaderKey() throws {
        let ksn = bytes("62994901190000000002")
        let ipek = try TDESDUKPT.ipek(bdk: secret(bdk), ksn: ksn)
        let tk = try TDESDUKPT.transactionKey(ipek: ipek, ksn: ksn)
        let dataHex = try TDESDUKPT.dataKey(transactionKey: tk).hexString()
        #expect(dataHex == "1A994C3E09D9ACEF3EA9BD4381EFA334")
    }

    @Test func cbcRoundTrip() throws {
        let key = secret("448D3F076D8304036A55A3D7E0055A78")
        let clear = Array(";4012345678909=2512101?".utf8)
        var data = SecretBytes(copying: clear).zeroPadded(toMultipleOf: 8)
        #expect(data.count == 24)
        try TDESDUKPT.encryptCBC(&data, key: key)
        let dataEquals = data.equals(clear + [0])
        #expect(!dataEquals)
        try TDESDUKPT.decryptCBC(&data, key: key)
        let roundTrip = data.equals(clear + [0])
        #expect(roundTrip)
    }

    @Test func counterRules() throws {
        #expect(TDESDUKPT.isValidCounter(1))
        #expect(TDESDUKPT.isValidCounter(0x1F_F800))
        #expect(!TDESDUKPT.isValidCounter(0x7FF))      // 11 one-bits
        #expect(!TDESDUKPT.isValidCounter(0x20_0000))  // beyond 21 bits
        #expect(TDESDUKPT.counter(after: 0x3FE) == 0x3FF)  // 10 one-bits: allowed
        #expect(TDESDUKPT.counter(after: 0x7FE) == 0x800)  // 0x7FF has 11
        #expect(TDESDUKPT.counter(after: 0x1F_F800) == nil)
        #expect(TDESDUKPT.ksn(initial: bytes("FFFF9876543210E00000"), counter: 0x15) == bytes("FFFF9876543210E00015"))
        #expect(try TDESDUKPT.counter(of: bytes("FFFF9876543210E00015")) == 0x15)
        let ipek = try TDESDUKPT.ipek(bdk: secret(bdk), ksn: bytes("FFFF9876543210E00000"))
        #expect(throws: DUKPTError.invalidCounter(0x7FF)) {
            _ = try TDESDUKPT.transactionKey(ipek: ipek, ksn: bytes("FFFF9876543210E007FF"))
        }
        #expect(throws: DUKPTError.ksnLength(9, expected: 10)) {
            _ = try TDESDUKPT.ipek(bdk: secret(bdk), ksn: bytes("FFFF9876543210E000"))
        }
    }
}
