import DUKPT
import Secrets
import PosminiProtocol

/// `posminictl decrypt`: what a processor does with a card event, for developers testing
/// against a test BDK. Prints clear card data on purpose.
public enum DecryptTool {
    public static let warning = "posminictl decrypt: printing clear card data. Use it only with test keys and test cards, never where the output is kept or shared."

    /// Every `CARD` line of `input` (or a bare `encrypted` object): each track, MAC checked.
    /// Lines of other messages (the ARMED before a CARD, say, when `posminictl arm --json` is
    /// piped in whole) are passed over; a line that is not JSON, a CARD without its cryptogram
    /// and a cryptogram that does not decrypt are each named with their line number. Exit
    /// status 0 when every card decrypted, 1 otherwise.
    public static func cards(bdk: BDKSource, input: [UInt8], out: (String) -> Void, err: (String) -> Void) -> Int32 {
        let lines = input.split(separator: 0x0A, omittingEmptySubsequences: false)
        var cards: [(line: Int, value: JSONValue)] = []
        var failed = false
        for (index, bytes) in lines.enumerated() where !bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }) {
            let value: JSONValue
            do { value = try JSONValue.parse(Array(bytes)) } catch {
                err("posminictl decrypt: line \(index + 1) is not JSON\(error == .invalidUTF8 ? " (not UTF-8)" : "")")
                failed = true
                continue
            }
            if value["encrypted"] != nil || value["ksn"] != nil {
                cards.append((index + 1, value))
            } else if value["class"]?.stringValue == "CARD" {
                err("posminictl decrypt: line \(index + 1): a CARD without an 'encrypted' object (the daemon has no key file?)")
                failed = true
            }
        }
        if cards.isEmpty {
            if !failed { err("posminictl decrypt: no CARD in the input (a line with an 'encrypted' object)") }
            return 1
        }
        var warned = false
        for (line, value) in cards {
            let prefix = cards.count > 1 ? "line \(line): " : ""
            do {
                let cryptogram = try CryptogramJSON.cryptogram(value["encrypted"] ?? value)
                let key = try bdkBytes(bdk)
                let tracks = try cryptogram.decrypt(bdk: key)
                if !warned { err(warning); warned = true }
                out(prefix + "scheme: \(cryptogram.scheme.rawValue)  KSN: \(Hex.encode(cryptogram.ksn))  MAC: \(cryptogram.mac == nil ? "none" : "ok")")
                for t in tracks { out(prefix + "track \(t.number): \(printable(t.text.bytes))") }
            } catch let e as CardEncryptionError {
                err("posminictl decrypt: \(prefix)\(e.message)")
                failed = true
            } catch {
                err("posminictl decrypt: \(prefix)\(error)")
                failed = true
            }
        }
        return failed ? 1 : 0
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
