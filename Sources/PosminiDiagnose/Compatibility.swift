import ReaderIO
import PosminiConfig

/// One device in a compatibility list.
struct CompatibilityEntry: Sendable, Hashable {
    enum Verdict: String, Sendable, Hashable { case good, bad }
    var name: String
    var file: String
    var line: Int
    /// `vvvv:pppp` USB ids, and names (ALSA card id, model or device name, `*` wildcards).
    var usb: [String] = []
    var cards: [String] = []
    var verdict: Verdict = .good
    /// Settings the device needs: capture volume (percent), mic boost (percent), input source.
    var captureVolume: Int?
    var micBoost: Int?
    var inputSource: String?
    var note: String?

    func matches(usbID: String?, names: [String]) -> Bool {
        if let usbID, usb.contains(usbID) { return true }
        return cards.contains { pattern in names.contains { fnmatch(pattern, $0, 0) == 0 } }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// The shipped list of known-good and known-bad devices, and the technicians' own. The
/// format, in the shipped file's header: `[Device name]` sections of `key = value` lines.
enum CompatibilityList {
    static let defaultFiles = ["/etc/posminid/compatibility.list", "/usr/share/posminid/compatibility.list"]

    struct Failure: Error, CustomStringConvertible {
        var file: String
        var line: Int
        var message: String
        var description: String { "\(file):\(line): \(message)" }
    }

    /// The entries of `path`; a missing file has none.
    static func load(_ path: String) throws(Failure) -> [CompatibilityEntry] {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path, limit: 1 << 20)
        } catch {
            if error.errno == ENOENT { return [] }
            throw Failure(file: path, line: 0, message: "cannot read: \(error)")
        }
        return try parse(String(decoding: bytes, as: UTF8.self), file: path)
    }

    static func parse(_ text: String, file: String) throws(Failure) -> [CompatibilityEntry] {
        var entries: [CompatibilityEntry] = []
        var current: CompatibilityEntry?
        func finish() throws(Failure) {
            guard let entry = current else { return }
            if entry.usb.isEmpty && entry.cards.isEmpty {
                throw Failure(file: file, line: entry.line, message: "[\(entry.name)] has neither usb nor card")
            }
            entries.append(entry)
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            var line = Substring(raw)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            let trimmed = line.trimmingWhitespace()
            if trimmed.isEmpty { continue }
            if trimmed.hasPrefix("[") {
                guard trimmed.hasSuffix("]"), trimmed.count > 2 else { throw Failure(file: file, line: number, message: "a section is [Device name]") }
                try finish()
                current = CompatibilityEntry(name: String(trimmed.dropFirst().dropLast()), file: file, line: number)
                continue
            }
            guard current != nil else { throw Failure(file: file, line: number, message: "a setting before the first [Device name]") }
            guard let equals = trimmed.firstIndex(of: "=") else { throw Failure(file: file, line: number, message: "expected 'key = value'") }
            let key = String(trimmed[..<equals].trimmingWhitespace())
            let value = String(trimmed[trimmed.index(after: equals)...].trimmingWhitespace())
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
