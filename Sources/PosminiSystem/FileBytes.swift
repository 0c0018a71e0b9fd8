#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a file could not be read or written: the path and the errno.
public typealias FileReadError = FileError

public struct FileError: Error, Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let errno: Int32
    /// What went wrong when the errno alone would not say (a symbolic link refused, a name that
    /// exists, the step that failed).
    public let reason: String?

    public init(path: String, errno: Int32, reason: String? = nil) {
        self.path = path
        self.errno = errno
        self.reason = reason
    }

    public var description: String {
        "\(path): \(reason ?? String(cString: strerror(errno)))"
    }
}

/// Whole-file reads for recordings and key files: the product's file I/O lives here, at the edge.
public enum FileBytes {
    /// The most a recording may be (a minute of 192 kHz stereo 32-bit float is 92 MB).
    public static let defaultLimit = 256 << 20

    /// `followingLinks` false: a symbolic link at `path` is refused (ELOOP), not read through.
    public static func read(_ path: String, limit: Int = defaultLimit, followingLinks: Bool = true) throws(FileReadError) -> [UInt8] {
        let fd: Int32
        switch SystemCall.attempt("open", { open(path, O_RDONLY | O_CLOEXEC | (followingLinks ? 0 : O_NOFOLLOW)) }) {
        case .success(let opened): fd = opened
        case .failure(let error): throw FileError.opening(path, errno: error.errno, directory: false)
        }
        defer { SystemCall.close(fd) }
        var info = stat()
        try fileCall("fstat", path) { fstat(fd, &info) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FileReadError(path: path, errno: EISDIR) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(max(0, min(Int(info.st_size), limit)))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let read = chunk.withUnsafeMutableBytes { raw in
                Result { () throws(SystemCallError) in try SystemCall.readSome(fd, into: raw) }
            }
            guard case .success(let n) = read else {
                if case .failure(let error) = read { throw FileReadError(path: path, errno: error.errno) }
                break
            }
            if n == 0 { break }
            guard bytes.count + n <= limit else { throw FileReadError(path: path, errno: EFBIG) }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Writes `bytes` to `path` whole, with mode `mode` (exactly, whatever the umask): through
    /// `Directory.write` in the directory holding `path`, opened without following a symbolic
    /// link; a random temporary name, flushed, renamed over `path`, the directory flushed.
    /// `durable` is kept for callers: every write is durable now.
    public static func write(_ bytes: [UInt8], to path: String, mode: UInt32 = 0o644, durable: Bool = false) throws(FileError) {
        let (directory, name) = try Directory.opening(containing: path)
        try directory.write(bytes, to: name, mode: mode)
    }

    /// Flushes the directory holding `path` (its entries: a rename, a new file).
    public static func syncDirectory(of path: String) throws(FileError) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let fd = try fileCall("open", directory) { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { SystemCall.close(fd) }
        try fileCall("fsync", directory) { fsync(fd) }
    }

    /// The file's permission bits and owner, or nil when it does not exist.
    public static func permissions(_ path: String) throws(FileError) -> (mode: UInt32, owner: UInt32)? {
        var info = stat()
        if case .failure(let error) = SystemCall.attempt("stat", { stat(path, &info) }) {
            if error.errno == ENOENT { return nil }
            throw FileError(path: path, errno: error.errno)
        }
        return (UInt32(info.st_mode) & 0o7777, UInt32(info.st_uid))
    }

    /// Creates a directory (mode `mode`) unless it exists.
    public static func makeDirectory(_ path: String, mode: UInt32) throws(FileError) {
        if case .failure(let error) = SystemCall.attempt("mkdir", { mkdir(path, mode) }), error.errno != EEXIST {
            throw FileError(path: path, errno: error.errno)
        }
    }

    /// This process's id (for unique temporary names).
    public static var processID: Int32 { getpid() }
}

extension FileBytes {
    /// The names in a directory (not `.` and `..`); empty when it cannot be read.
    public static func entries(ofDirectory path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Where a symbolic link points (nil when `path` is not one or cannot be read).
    public static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4_096)
        guard let n = try? SystemCall.retrying("readlink", { readlink(path, &buffer, buffer.count - 1) }), n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
