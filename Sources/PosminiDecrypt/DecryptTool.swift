import DUKPT
import Secrets
import PosminiProtocol

/// `posminictl decrypt`: what a processor does with a card event, for developers testing
/// against a test BDK. Prints clear card data on purpose.
public enum DecryptTool {
    public static let warning = "posminictl decrypt: printing clear card data. Use it only with test keys and test cards, never where the output is kept or shared."

    /// A `CARD` line (or its `encrypted` object): each track, MAC checked. Exit status 0 or 1.
    public static func card(bdk: BDKSource, json: [UInt8], out: (String) -> Void, err: (String) -> Void) -> Int32 {
        let value: JSONValue
        do { value = try JSONValue.parse(json) } catch {
            err("posminictl decrypt: the input is not JSON: \(error)")
            return 1
        }
        let encrypted = value["encrypted"] ?? value
        do {
            let cryptogram = try CryptogramJSON.cryptogram(encrypted)
            let key = try bdkBytes(bdk)
            let tracks = try cryptogram.decrypt(bdk: key)
            err(warning)
            out("scheme: \(cryptogram.scheme.rawValue)  KSN: \(Hex.encode(cryptogram.ksn))  MAC: \(cryptogram.mac == nil ? "none" : "ok")")
            for t in tracks { out("track \(t.number): \(printable(t.text.bytes))") }
            return 0
        } catch let e as CardEncryptionError {
            err("posminictl decrypt: \(e.message)\(value["encrypted"] == nil && value["class"] != nil ? " (the message has no 'encrypted' object)" : "")")
        } catch {
            err("posminictl decrypt: \(error)")
        }
        return 1
    }

    /// A raw TDES cryptogram (a classic reader's field): the text, then any bytes after it.
    public static func raw(bdk: BDKSource, ksn: String, data: String, out: (String) -> Void, err: (String) -> Void) -> Int32 {
        do {
            let ksnBytes: [UInt8]
            do { ksnBytes = try Hex.decode(ksn) } catch { throw CardEncryptionError(code: "", message: "--ksn \(error)") }
            let dataBytes: [UInt8]
            do { dataBytes = try Hex.decode(data) } catch { throw CardEncryptionError(code: "", message: "--data \(error)") }
            let clear = try Cryptogram.decryptTDES(bdk: try bdkBytes(bdk), ksn: ksnBytes, data: dataBytes)
            err(warning)
            out(printable(clear))
            return 0
        } catch let e as CardEncryptionError {
            err("posminictl decrypt: \(e.message)")
        } catch {
            err("posminictl decrypt: \(error)")
        }
        return 1
    }

    static func bdkBytes(_ source: BDKSource) throws -> SecretBytes {
        do { return try source.read() } catch {
            throw CardEncryptionError(code: "", message: "\(error)")
        }
    }

    /// Printable ASCII as it is; trailing zero padding dropped; other bytes as `<XX>`.
    static func printable(_ bytes: borrowing SecretBytes) -> String {
        var end = bytes.count
        while end > 0 && bytes[end - 1] == 0 { end -= 1 }
        var s = ""
        for i in 0..<end {
            let b = bytes[i]
            if b >= 0x20 && b < 0x7F { s.unicodeScalars.append(Unicode.Scalar(b)) } else { s += "<" + Hex.encode([b]) + ">" }
        }
        return s
    }
}
