/// The one reader of posminid's `key = value` files: the configuration, the key file, the
/// transaction counter and the compatibility list. It finds lines, names and values and hands
/// back their byte ranges; each file's own rules (which names, which values, what may repeat)
/// stay with that file.
///
/// It reads through `byte`, never copying the text: the key file's key is read in its wiped
/// buffer, and only the ranges leave.
public enum KeyValueText {
    public enum Comments: Sendable {
        /// `#` starts a comment anywhere on a line (the configuration, the compatibility list).
        case anywhere
        /// Only a line that starts with `#` is a comment (the key file, the counter: no value
        /// holds a `#`, and a key file's line is never cut short).
        case wholeLine
    }

    /// A `name = value` line, or a `[section]` (its name in `name`, `value` empty).
    public struct Entry: Sendable, Hashable {
        /// 1-based.
        public var line: Int
        public var name: Range<Int>
        public var value: Range<Int>
        public var isSection: Bool
    }

    /// A line that is neither blank, a comment, a setting nor (where allowed) a section.
    public struct Malformed: Error, Sendable, Hashable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// The entries of `count` bytes read through `byte`, in order. Spaces and tabs around names
    /// and values, and a CR before the newline, are not part of them.
    public static func entries(count: Int, byte: (Int) -> UInt8, comments: Comments,
                               sections: Bool = false) throws(Malformed) -> [Entry] {
        func blank(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D }
        var out: [Entry] = []
        var start = 0, number = 0
        while start < count {
            var end = start
            while end < count && byte(end) != 0x0A { end += 1 }
            number += 1
            var a = start, b = end
            if comments == .anywhere {
                var hash = a
                while hash < b && byte(hash) != UInt8(ascii: "#") { hash += 1 }
                b = hash
            }
            while a < b && blank(byte(a)) { a += 1 }
            while b > a && blank(byte(b - 1)) { b -= 1 }
            defer { start = end + 1 }
            if a == b || byte(a) == UInt8(ascii: "#") { continue }
            if sections && byte(a) == UInt8(ascii: "[") {
                guard byte(b - 1) == UInt8(ascii: "]"), b - a > 2 else { throw Malformed(line: number, message: "a section is [name]") }
                out.append(Entry(line: number, name: (a + 1)..<(b - 1), value: (b - 1)..<(b - 1), isSection: true))
                continue
            }
            var eq = a
            while eq < b && byte(eq) != UInt8(ascii: "=") { eq += 1 }
            guard eq < b else { throw Malformed(line: number, message: "expected 'key = value'") }
            var nameEnd = eq
            while nameEnd > a && blank(byte(nameEnd - 1)) { nameEnd -= 1 }
            var valueStart = eq + 1
            while valueStart < b && blank(byte(valueStart)) { valueStart += 1 }
            out.append(Entry(line: number, name: a..<nameEnd, value: valueStart..<b, isSection: false))
        }
        return out
    }

    /// The entries of a text.
    public static func entries(_ bytes: [UInt8], comments: Comments, sections: Bool = false) throws(Malformed) -> [Entry] {
        try entries(count: bytes.count, byte: { bytes[$0] }, comments: comments, sections: sections)
    }

    /// The text of a range (a name, or a value that is no secret).
    public static func string(_ bytes: [UInt8], _ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }
}
