public import DUKPT
public import PosminiProtocol
import Secrets

/// Why a card could not be encrypted, or a cryptogram not read back: a protocol error code and
/// a message naming the problem.
public struct CardEncryptionError: Error, Sendable, Hashable {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// A CARD's `encrypted` object, both ways: written by the daemon, read back by `decrypt`.
public enum CryptogramJSON {
    /// `{"scheme":…,"ksn":…,"tracks":{"1":…},"mac":…}`, uppercase hex.
    public static func json(_ c: Cryptogram) -> JSONValue {
        var tracks: [String: JSONValue] = [:]
        for t in c.tracks { tracks[String(t.number)] = .string(Hex.encode(t.ciphertext)) }
        var fields: [String: JSONValue] = ["scheme": .string(c.scheme.rawValue), "ksn": .string(Hex.encode(c.ksn)),
                                           "tracks": .object(tracks)]
        if let mac = c.mac { fields["mac"] = .string(Hex.encode(mac)) }
        return .object(fields)
    }

    /// The `encrypted` object of a CARD read back (what `posminictl decrypt` takes).
    public static func cryptogram(_ value: JSONValue) throws(CardEncryptionError) -> Cryptogram {
        func bad(_ why: String) -> CardEncryptionError { CardEncryptionError(code: "invalid_cryptogram", message: why) }
        guard case .object(let fields) = value else { throw bad("'encrypted' is not an object") }
        guard case .string(let schemeName)? = fields["scheme"] else { throw bad("'scheme' missing") }
        guard let scheme = DUKPTScheme(rawValue: schemeName) else { throw bad("unknown scheme '\(schemeName)'") }
        guard case .string(let ksnHex)? = fields["ksn"], let ksn = try? Hex.decode(ksnHex), ksn.count == scheme.ksnLength else {
            throw bad("'ksn' is not \(scheme.ksnLength * 2) hex digits")
        }
        guard case .object(let trackFields)? = fields["tracks"] else { throw bad("'tracks' missing") }
        var tracks: [Cryptogram.Track] = []
        for (name, v) in trackFields {
            guard let n = Int(name), (1...3).contains(n) else { throw bad("track '\(name)' is not 1, 2 or 3") }
            guard case .string(let hex) = v, let bytes = try? Hex.decode(hex), !bytes.isEmpty, bytes.count % scheme.blockSize == 0 else {
                throw bad("track \(name) is not whole \(scheme.blockSize)-byte blocks of hex")
            }
            tracks.append(Cryptogram.Track(number: n, ciphertext: bytes))
        }
        var mac: [UInt8]?
        if case .string(let hex)? = fields["mac"] {
            guard let bytes = try? Hex.decode(hex) else { throw bad("'mac' is not hex") }
            mac = bytes
        }
        return Cryptogram(scheme: scheme, ksn: ksn, tracks: tracks, mac: mac)
    }

}
