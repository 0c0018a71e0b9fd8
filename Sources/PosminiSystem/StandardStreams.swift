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

    static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }
}
