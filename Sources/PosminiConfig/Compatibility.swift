import PosminiSystem

/// One device in a compatibility list.
public struct CompatibilityEntry: Sendable, Hashable {
    public enum Verdict: String, Sendable, Hashable { case good, bad }
    public var name: String
    public var file: String
    public var line: Int
    /// `vvvv:pppp` USB ids, and names (ALSA card id, model or device name, `*` wildcards).
    public var usb: [String] = []
    public var cards: [String] = []
    public var verdict: Verdict = .good
    /// Settings the device needs: capture volume (percent), mic boost (percent), input source.
    public var captureVolume: Int?
    public var micBoost: Int?
    public var inputSource: String?
    public var note: String?

    public func matches(usbID: String?, names: [String]) -> Bool {
        if let usbID, usb.contains(usbID) { return true }
        return cards.contains { pattern in names.contains { fnmatch(pattern, $0, 0) == 0 } }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The shipped list of known-good and known-bad devices, and the technicians' own. The
/// format, in the shipped file's header: `[Device name]` sections of `key = value` lines.
public enum CompatibilityList {
    public static let defaultFiles = ["/etc/posminid/compatibility.list", "/usr/share/posminid/compatibility.list"]

    public struct Failure: Error, CustomStringConvertible {
        public var file: String
        public var line: Int
        public var message: String
        public var description: String { "\(file):\(line): \(message)" }
    }

    /// The entries of `path`; a missing file has none.
    public static func load(_ path: String) throws(Failure) -> [CompatibilityEntry] {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path, limit: 1 << 20)
        } catch {
            if error.errno == ENOENT { return [] }
            throw Failure(file: path, line: 0, message: "cannot read: \(error)")
        }
        return try parse(String(decoding: bytes, as: UTF8.self), file: path)
    }

    public static func parse(_ text: String, file: String) throws(Failure) -> [CompatibilityEntry] {
        var entries: [CompatibilityEntry] = []
        var current: CompatibilityEntry?
        func finish() throws(Failure) {
            guard let entry = current else { return }
            if entry.usb.isEmpty && entry.cards.isEmpty {
                throw Failure(file: file, line: entry.line, message: "[\(entry.name)] has neither usb nor card")
            }
            entries.append(entry)
        }
        let bytes = Array(text.utf8)
        let lines: [KeyValueText.Entry]
        do {
            lines = try KeyValueText.entries(bytes, comments: .anywhere, sections: true)
        } catch {
            throw Failure(file: file, line: error.line, message: error.message == "a section is [name]" ? "a section is [Device name]" : error.message)
        }
        for entry in lines {
            let number = entry.line
            if entry.isSection {
                try finish()
                current = CompatibilityEntry(name: KeyValueText.string(bytes, entry.name), file: file, line: number)
                continue
            }
            guard current != nil else { throw Failure(file: file, line: number, message: "a setting before the first [Device name]") }
            let key = KeyValueText.string(bytes, entry.name)
            let value = KeyValueText.string(bytes, entry.value)
            func percent() throws(Failure) -> Int {
                guard let n = Int(value.hasSuffix("%") ? String(value.dropLast()) : value), (0...100).contains(n) else {
                    throw Failure(file: file, line: number, message: "'\(key)' is a percentage from 0 to 100, not '\(value)'")
                }
                return n
            }
            switch key {
            case "usb":
                let parts = value.lowercased().split(separator: ":")
                guard parts.count == 2, parts.allSatisfy({ $0.count == 4 && $0.allSatisfy(\.isHexDigit) }) else {
                    throw Failure(file: file, line: number, message: "'usb' is vendor:product in hex (lsusb's 'ID 0d8c:0014'), not '\(value)'")
                }
                current!.usb.append(value.lowercased())
            case "card": current!.cards.append(value)
            case "verdict":
                guard let verdict = CompatibilityEntry.Verdict(rawValue: value) else {
                    throw Failure(file: file, line: number, message: "'verdict' is good or bad, not '\(value)'")
                }
                current!.verdict = verdict
            case "capture_volume": current!.captureVolume = try percent()
            case "mic_boost": current!.micBoost = try percent()
            case "input_source": current!.inputSource = value
            case "note": current!.note = value
            default: throw Failure(file: file, line: number, message: "unknown key '\(key)'")
            }
        }
        try finish()
        return entries
    }
}
