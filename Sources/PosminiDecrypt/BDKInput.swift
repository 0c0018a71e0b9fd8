public import Secrets
import PosminiSystem
#if canImport(Glibc)
import Glibc
#endif

/// Where `provision` and `decrypt` take the base derivation key from. On the command line
/// (`--bdk HEX`) it is in the process list for every user of the machine (ps, /proc/PID/cmdline):
/// a file (`--bdk-file PATH`) or standard input (`--bdk -`) keeps it out of sight.
public enum BDKSource: Sendable, Hashable {
    case hex(String)
    case file(String)
    case standardInput

    /// From the two options: `--bdk HEX` or `--bdk -`, and `--bdk-file PATH`; nil unless exactly one is given.
    public init?(bdk: String?, bdkFile: String?) {
        switch (bdk, bdkFile) {
        case (let hex?, nil): self = hex == "-" ? .standardInput : .hex(hex)
        case (nil, let path?): self = .file(path)
        default: return nil
        }
    }

    /// Said on stderr when the key came on the command line.
    public static func commandLineWarning(_ command: String) -> String {
        "\(command): warning: a BDK given with --bdk HEX is visible to every user in the process list (ps, /proc/PID/cmdline); "
            + "use --bdk-file PATH (mode 600) or --bdk - (standard input) instead"
    }

    /// Why the key could not be read.
    public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Most bytes a key file or standard input may hold: a key is 32 digits, with some room for
    /// blank lines and a comment-free newline; more is not a BDK file.
    static let limit = 1_024

    /// The 16 key bytes, parsed from the hex digits straight into wiped memory. A file or standard
    /// input holds the digits on one line; white space around them is ignored.
    public func read() throws(Failure) -> SecretBytes {
        switch self {
        case .hex(let text):
            do { return try Hex.decodeSecret(text, lengths: [16]) } catch { throw Failure(description: "--bdk \(error)") }
        case .file(let path):
            // Non-blocking: a FIFO or a device named here must not hang the tool; it is refused
            // below, as is anything but a regular file.
            let fd: Int32
            switch SystemCall.attempt("open", { open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY) }) {
            case .success(let opened): fd = opened
            case .failure(let error): throw Failure(description: "--bdk-file \(path): \(String(cString: strerror(error.errno)))")
            }
            defer { SystemCall.close(fd) }
            let status: FileStatus
            do { status = try FileStatus(descriptor: fd, path: path) } catch { throw Failure(description: "--bdk-file \(error)") }
            if let refusal = Self.refusal(status) { throw Failure(description: "--bdk-file \(path): \(refusal)") }
            return try Self.read(fd, name: "--bdk-file \(path)", untilNewline: false)
        case .standardInput:
            return try Self.read(0, name: "--bdk - (standard input)", untilNewline: true)
        }
    }

    /// Why a key file of this `st_mode` is refused: not a regular file, or readable by anyone
    /// but its owner (the key is the root of every card key the terminal makes).
    static func refusal(_ status: FileStatus) -> String? {
        guard status.kind == .regular else {
            return "a \(status.kind.rawValue): a BDK file must be a regular file (or use --bdk - for standard input)"
        }
        guard status.mode & 0o077 == 0 else {
            return "mode \(String(status.mode, radix: 8)) lets others read the key: it must be readable by its owner only (chmod 600)"
        }
        return nil
    }

    /// Reads `fd` into a wiped buffer (never a String or an Array: those copies are not wiped):
    /// to its end, or for standard input to the end of the first line that holds something (a
    /// person typing the key ends it with Enter).
    static func read(_ fd: Int32, name: String, untilNewline: Bool) throws(Failure) -> SecretBytes {
        var buffer = SecretBytes(count: limit + 1)
        var filled = 0
        var failure: Int32 = 0
        buffer.withUnsafeMutableBytes { raw in
            while filled < raw.count {
                let n: Int
                do throws(SystemCallError) { n = try SystemCall.readSome(fd, into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: raw[filled...]))) }
                catch { failure = error.errno; return }
                if n == 0 { return }
                let start = filled
                filled += n
                if untilNewline, raw[start..<filled].contains(0x0A),
                   raw[0..<filled].contains(where: { !Self.isSpace($0) }) { return }
            }
        }
        if failure != 0 { throw Failure(description: "\(name): \(String(cString: strerror(failure)))") }
        guard filled <= limit else { throw Failure(description: "\(name): more than \(limit) bytes: not a BDK (32 hex digits)") }
        return try buffer.withUnsafeBytes { raw throws(Failure) -> SecretBytes in
            var start = 0, end = filled
            while start < end && Self.isSpace(raw[start]) { start += 1 }
            // Standard input may go on past the key's line: only that line counts.
            if let newline = raw[start..<end].firstIndex(of: 0x0A) { end = newline }
            while end > start && Self.isSpace(raw[end - 1]) { end -= 1 }
            guard end > start else { throw Failure(description: "\(name): empty: expected the BDK, 32 hex digits") }
            do {
                return try Hex.decodeSecret(digits: UnsafeBufferPointer(rebasing: raw[start..<end]), lengths: [16])
            } catch {
                throw Failure(description: "\(name): \(error)")
            }
        }
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
}
