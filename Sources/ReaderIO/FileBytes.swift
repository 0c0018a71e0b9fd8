#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a file could not be read.
public struct FileReadError: Error, Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let errno: Int32

    public var description: String {
        "\(path): \(String(cString: strerror(errno)))"
    }
}

/// Whole-file reads for recordings and key files: the product's file I/O lives here, at the edge.
public enum FileBytes {
    /// The most a recording may be (a minute of 192 kHz stereo 32-bit float is 92 MB).
    public static let defaultLimit = 256 << 20

    public static func read(_ path: String, limit: Int = defaultLimit) throws(FileReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileReadError(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileReadError(path: path, errno: errno) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FileReadError(path: path, errno: EISDIR) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(0, min(Int(info.st_size), limit)))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileReadError(path: path, errno: errno)
            }
            if n == 0 { break }
            guard bytes.count + n <= limit else { throw FileReadError(path: path, errno: EFBIG) }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }
}
