import Testing
import DUKPT
import Secrets

@Suite struct CryptogramTests {
    let aesBDK = "FEDCBA9876543210F1F1F1F1F1F1F1F1"
    let tdesBDK = "0123456789ABCDEFFEDCBA9876543210"
    let track1 = Array("%B4012345678909^TEST/CARD^2512101000000000?".utf8)
    let track2 = Array(";4012345678909=25121010000000000?".utf8)

    func text(_ a: [UInt8]) -> String { String(decoding: a, as: UTF8.self) }

    @Test func aesLayoutAndRoundTrip() throws {
        let device = try DeviceKey.derive(scheme: .aes128, bdk: secret(aesBDK), keyID: bytes("1234567890123456"))
        let cg = try device.encrypt(tracks: [(2, SecretText(copying: track2)), (1, SecretText(copying: track1))], counter: 1)
        #expect(cg.scheme == .aes128)
        #expect(Hex.encode(cg.ksn) == "123456789012345600000001")
        #expect(cg.tracks.map(\.number) == [1, 2])
        #expect(cg.tracks.map(\.ciphertext.count) == [48, 48])
        #expect(cg.mac?.count == 16)
        // The first block of track 2 under the published counter-1 data key, by hand.
        var expected = SecretBytes(copying: track2).zeroPadded(toMultipleOf: 16)
        try AESDUKPT.encryptCBC(&expected, key: secret("A35C412EFD41FDB98B69797C02DCD08F"))
        let expectedHex = expected.hexString()
        #expect(Hex.encode(cg.tracks[1].ciphertext) == expectedHex)
        let clear = try cg.decrypt(bdk: secret(aesBDK))
        #expect(clear.map(\.number) == [1, 2])
        let t1 = clear[0].text.bytes.equals(track1), t2 = clear[1].text.bytes.equals(track2)
        #expect(t1 && t2)
    }

    @Test func aesMacRefusesAlteredCryptogram() throws {
        let device = try DeviceKey.derive(scheme: .aes128, bdk: secret(aesBDK), keyID: bytes("1234567890123456"))
        let cg = try device.encrypt(tracks: [(2, SecretText(copying: track2))], counter: 7)
        var altered = cg
        altered.tracks[0].ciphertext[3] ^= 1
        #expect(throws: DUKPTError.macMismatch) { _ = try altered.decrypt(bdk: secret(aesBDK)) }
        var renumbered = cg
        renumbered.tracks[0].number = 3
        #expect(throws: DUKPTError.macMismatch) { _ = try renumbered.decrypt(bdk: secret(aesBDK)) }
        var noMac = cg
        noMac.mac = nil
        #expect(throws: DUKPTError.macMissing, "a missing MAC is named as missing") { _ = try noMac.decrypt(bdk: secret(aesBDK)) }
        #expect(throws: DUKPTError.macMismatch) { _ = try cg.decrypt(bdk: secret(tdesBDK)) }
        #expect(throws: DUKPTError.invalidCounter(0)) { _ = try device.encrypt(tracks: [], counter: 0) }
    }

    @Test func tdesLayoutAndRoundTrip() throws {
        let device = try DeviceKey.derive(scheme: .tdes, bdk: secret(tdesBDK), keyID: bytes("FFFF9876543210E00000"))
        let keyHex = device.key.hexString()
        #expect(keyHex == "6AC292FAA1315B4D858AB3A3D7D5933A")
        let cg = try device.encrypt(tracks: [(2, SecretText(copying: track2))], counter: 0x15)
        #expect(Hex.encode(cg.ksn) == "FFFF9876543210E00015")
        #expect(cg.mac == nil)
        #expect(cg.tracks[0].ciphertext.count == 40)
        var expected = SecretBytes(copying: track2).zeroPadded(toMultipleOf: 8)
        try TDESDUKPT.encryptCBC(&expected, key: secret("D9AE3E62F5E3CA2C357E37F500D9F314"))
        let expectedHex = expected.hexString()
        #expect(Hex.encode(cg.tracks[0].ciphertext) == expectedHex)
        let clear = try cg.decrypt(bdk: secret(tdesBDK))
        let same = clear[0].text.bytes.equals(track2)
        #expect(same)
        #expect(throws: DUKPTError.invalidCounter(0x7FF)) { _ = try device.encrypt(tracks: [], counter: 0x7FF) }
    }

    /// A cryptogram an ID TECH reader sent, under the published TDES test BDK.
    @Test func idTechReaderCryptogram() throws {
        let data = bytes("DA7F2A52BD3F6DD8B96C50FC39C7E6AF22F06ED1F033BE0FB23D6BD33DC5A1F808512F7AE18D47A60CC3F4559B1B093563BE7E07459072ABF8FAAB5338C6CC8815FF87797AE3A7BE")
        let clear = try Cryptogram.decryptTDES(bdk: secret(tdesBDK), ksn: bytes("62994901190000000002"), data: data)
        let expected = Array("%B4266841088889999^BUSH JR/GEORGE W.MR^0809101100001100000000046000000?".utf8)
        let prefix = clear.slice(0..<expected.count).equals(expected)
        #expect(prefix)
        #expect(throws: DUKPTError.ciphertextLength(7, block: 8)) {
            _ = try Cryptogram.decryptTDES(bdk: secret(tdesBDK), ksn: bytes("62994901190000000002"), data: Array(data.prefix(7)))
        }
    }

    @Test func keyIDsAreChecked() {
        #expect(throws: DUKPTError.ikidLength(10)) {
            _ = try DeviceKey.derive(scheme: .aes128, bdk: secret(aesBDK), keyID: bytes("FFFF9876543210E00000"))
        }
        #expect(throws: DUKPTError.ksnLength(8, expected: 10)) {
            _ = try DeviceKey.derive(scheme: .tdes, bdk: secret(tdesBDK), keyID: bytes("1234567890123456"))
        }
        #expect(throws: DUKPTError.keyLength(32, expected: [16])) {
            _ = try DeviceKey(scheme: .aes128, key: SecretBytes(count: 32), keyID: bytes("1234567890123456"))
        }
    }

    @Test func secretBytesWipeAndHex() throws {
        #expect(throws: HexError.notHex(position: 2)) { _ = try Hex.decodeSecret("12G4", lengths: [2]) }
        #expect(throws: HexError.wrongLength(expected: [16], got: 2)) { _ = try Hex.decodeSecret("1234", lengths: [16]) }
        #expect(throws: HexError.oddLength(3)) { _ = try Hex.decode("123") }
        let s = try Hex.decodeSecret("a1B2", lengths: [2])
        let hex = s.hexString()
        #expect(hex == "A1B2")
        // The wipe: write through the buffer, wipe, read back zeros.
        var b = SecretBytes(copying: [1, 2, 3, 4])
        b.withUnsafeMutableBytes { SecretBytes.wipe(UnsafeMutableRawPointer($0.baseAddress!), $0.count) }
        let zero = b.equals([0, 0, 0, 0])
        #expect(zero)
    }
}
