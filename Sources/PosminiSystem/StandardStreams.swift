#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Line output on stdout and stderr with write(2): no shared C `FILE*` state, so callable from
/// any thread or task.
public enum StandardStreams {
    public static func out(_ line: String) { write(line + "\n", to: 1) }
    public static func err(_ line: String) { write(line + "\n", to: 2) }
    /// Text on stderr as it is, no newline (a line redrawn in place with `\r`).
    public static func errInPlace(_ text: String) { write(text, to: 2) }

    public static func write(_ text: String, to fd: Int32) {
        // A closed or full stream loses the line: there is nowhere left to say so.
        Array(text.utf8).withUnsafeBytes { try? SystemCall.writeAll(fd, $0) }
    }
}
