import CPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What fstat says about a file: its type, permission bits and owner.
public struct FileStatus: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case regular = "regular file", directory, symbolicLink = "symbolic link", fifo = "FIFO (named pipe)",
             socket, characterDevice = "character device", blockDevice = "block device", unknown = "special file"
    }

    public var kind: Kind
    /// Permission bits with set-user-ID, set-group-ID and sticky (0o7777).
    public var mode: UInt32
    public var owner: UInt32
    public var group: UInt32

    init(_ info: stat) {
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symbolicLink
        case S_IFIFO: kind = .fifo
        case S_IFSOCK: kind = .socket
        case S_IFCHR: kind = .characterDevice
        case S_IFBLK: kind = .blockDevice
        default: kind = .unknown
        }
        mode = UInt32(info.st_mode) & 0o7777
        owner = UInt32(info.st_uid)
        group = UInt32(info.st_gid)
    }

    /// The mode as `ls` people write it: four octal digits.
    public var modeText: String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// Whether someone other than the owner (its group, or anyone) may create, remove or rename
    /// names in it (a directory) or change it (a file).
    public var writableByOthers: Bool { mode & 0o022 != 0 }

    /// Owned by one of `owners` and writable by nobody else: nobody but them can put a name
    /// in a directory like this, or replace one.
    public func isPrivate(to owners: Set<UInt32>) -> Bool { owners.contains(owner) && !writableByOthers }
}

/// A file's new owner (fchown on the descriptor before it gets its name).
public struct FileOwner: Sendable, Hashable {
    public var user: UInt32
    public var group: UInt32
    public init(user: UInt32, group: UInt32) {
        self.user = user
        self.group = group
    }
}

/// A directory opened once, without following a symbolic link in its place; files in it are
/// reached by name through its descriptor, so a directory renamed or replaced after the open
/// (or a link planted in a path) cannot redirect them.
public final class Directory: Sendable {
    public let path: String
    public let descriptor: Int32
    /// Opened with O_PATH: names only (no fsync, no listing); `sync()` reopens it for that.
    private let namesOnly: Bool

    private init(path: String, descriptor: Int32, namesOnly: Bool) {
        self.path = path
        self.descriptor = descriptor
        self.namesOnly = namesOnly
    }

    deinit { close(descriptor) }

    /// Opens the directory `path`. `namesOnly`: with O_PATH, which needs only search permission
    /// (for fchownat and the like, not for writing files).
    public convenience init(opening path: String, namesOnly: Bool = false) throws(FileError) {
        let access = namesOnly ? posmini_o_path() : O_RDONLY
        let fd = open(path, access | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.opening(path, errno: errno, directory: true) }
        self.init(path: path, descriptor: fd, namesOnly: namesOnly)
    }

    /// Opens the directory `path`, making it first (mode `mode`, less the umask) when it does not
    /// exist; `created` says whether this call made it.
    public static func openOrCreate(_ path: String, mode: UInt32) throws(FileError) -> (directory: Directory, created: Bool) {
        var created = true
        if mkdir(path, mode_t(mode)) != 0 {
            guard errno == EEXIST else { throw FileError(path: path, errno: errno, reason: "cannot create the directory: \(FileError.text(errno))") }
            created = false
        }
        return (try Directory(opening: path), created)
    }

    /// The directory holding `path` (opened as `init(opening:)` does) and the last name of `path`.
    public static func opening(containing path: String, namesOnly: Bool = false) throws(FileError) -> (directory: Directory, name: String) {
        let (parent, name) = try split(path)
        return (try Directory(opening: parent, namesOnly: namesOnly), name)
    }

    static func split(_ path: String) throws(FileError) -> (directory: String, name: String) {
        let directory: String, name: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
            name = String(path[path.index(after: slash)...])
        } else {
            directory = "."
            name = path
        }
        guard isPlainName(name) else { throw FileError(path: path, errno: EINVAL, reason: "not the path of a file") }
        return (directory, name)
    }

    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/")
    }

    /// fstat on the descriptor: the directory that was opened, not whatever the path names now.
    public func status() throws(FileError) -> FileStatus {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw FileError(path: path, errno: errno) }
        return FileStatus(info)
    }

    /// The full path of `name` in here, for messages.
    public func pathOf(_ name: String) -> String { path.hasSuffix("/") ? path + name : path + "/" + name }

    /// Writes `bytes` as the file `name` in this directory, whole: see `write(to:mode:owner:replacing:_:)`.
    public func write(_ bytes: [UInt8], to name: String, mode: UInt32, owner: FileOwner? = nil, replacing: Bool = true) throws(FileError) {
        // Array's withUnsafeBytes rethrows untyped: the error is carried out by hand.
        let failure: FileError? = bytes.withUnsafeBytes { raw in
            do throws(FileError) {
                try write(to: name, mode: mode, owner: owner, replacing: replacing, raw)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// Writes `bytes` as the file `name` in this directory, whole. The bytes go into a new
    /// temporary file of a random name (created O_EXCL|O_NOFOLLOW, so nothing planted there is
    /// opened), which gets `mode` and `owner` through its descriptor, is flushed, and is renamed
    /// to `name`; then the directory is flushed, so the new name survives a power cut. A reader
    /// sees the old file or the new one, never half of one. `replacing` false: the file is put in
    /// place only if `name` does not exist (no file, link or anything else), else EEXIST.
    /// On any failure the temporary file is removed.
    public func write(to name: String, mode: UInt32, owner: FileOwner? = nil, replacing: Bool = true,
                      _ bytes: UnsafeRawBufferPointer) throws(FileError) {
        let target = pathOf(name)
        guard Directory.isPlainName(name) else { throw FileError(path: target, errno: EINVAL, reason: "not a file name") }
        let (fd, temporary) = try createTemporary(for: name)
        func fail(_ what: String, _ code: Int32, closing: Bool = true) -> FileError {
            if closing { close(fd) }
            unlinkat(descriptor, temporary, 0)
            return FileError(path: target, errno: code, reason: "\(what): \(FileError.text(code))")
        }
        if let owner, fchown(fd, owner.user, owner.group) != 0 { throw fail("cannot set the owner", errno) }
        // Exactly `mode`, whatever the umask: the caller says who may read the file.
        guard fchmod(fd, mode_t(mode)) == 0 else { throw fail("cannot set the mode", errno) }
        var written = 0
        while written < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("cannot write", errno)
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw fail("cannot flush", errno) }
        guard close(fd) == 0 else { throw fail("cannot write", errno, closing: false) }
        if replacing {
            guard renameat(descriptor, temporary, descriptor, name) == 0 else { throw fail("cannot rename into place", errno, closing: false) }
        } else {
            try linkNew(temporary, as: name, target: target)
        }
        try sync()
    }

    /// Renames `temporary` to `name` unless `name` exists. renameat2(RENAME_NOREPLACE) where the
    /// file system has it; else a hard link (which never replaces either) and an unlink.
    private func linkNew(_ temporary: String, as name: String, target: String) throws(FileError) {
        if posmini_rename_noreplace(descriptor, temporary, descriptor, name) == 0 { return }
        var code = errno
        if code == EINVAL || code == ENOSYS {
            if linkat(descriptor, temporary, descriptor, name, 0) == 0 {
                unlinkat(descriptor, temporary, 0)
                return
            }
            code = errno
        }
        unlinkat(descriptor, temporary, 0)
        if code == EEXIST { throw FileError(path: target, errno: EEXIST, reason: "exists: refusing to replace it") }
        throw FileError(path: target, errno: code, reason: "cannot put the file in place: \(FileError.text(code))")
    }

    /// A new, empty file of a random name beside `name` (mode 600 until the caller sets its own).
    private func createTemporary(for name: String) throws(FileError) -> (Int32, String) {
        let stem = name.utf8.count > 200 ? "" : name
        var code = EEXIST
        // A name that exists (chance, or planted) is skipped; O_EXCL never opens it.
        for _ in 0..<16 {
            var random = [UInt8](repeating: 0, count: 8)
            guard random.withUnsafeMutableBytes({ posmini_random_bytes($0.baseAddress, UInt($0.count)) }) == 0 else {
                throw FileError(path: pathOf(name), errno: errno, reason: "no random name for a temporary file: \(FileError.text(errno))")
            }
            let temporary = "." + stem + ".tmp-" + random.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            let fd = openat(descriptor, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
            if fd >= 0 { return (fd, temporary) }
            code = errno
            if code != EEXIST { break }
        }
        throw FileError(path: pathOf(name), errno: code, reason: "cannot create a temporary file beside it: \(FileError.text(code))")
    }

    /// Flushes the directory's entries (a rename, a new name) to the disk.
    public func sync() throws(FileError) {
        var fd = descriptor
        if namesOnly {
            fd = openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { throw FileError(path: path, errno: errno) }
        }
        defer { if fd != descriptor { close(fd) } }
        guard fsync(fd) == 0 else { throw FileError(path: path, errno: errno, reason: "cannot flush the directory: \(FileError.text(errno))") }
    }

    /// Gives `name` (in here; a symbolic link there is changed itself, never what it points to)
    /// to group `group`.
    public func setGroup(of name: String, to group: UInt32) throws(FileError) {
        guard fchownat(descriptor, name, UInt32.max, group, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw FileError(path: pathOf(name), errno: errno, reason: "cannot change the group: \(FileError.text(errno))")
        }
    }

    /// fstat of `name` in here, not following a symbolic link; nil when there is no such name.
    public func status(of name: String) throws(FileError) -> FileStatus? {
        var info = stat()
        guard fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return nil }
            throw FileError(path: pathOf(name), errno: errno)
        }
        return FileStatus(info)
    }
}

/// A file opened for reading that is what it says: a symbolic link in its place is not
/// followed, and a FIFO does not block the open (O_NONBLOCK). `status` is fstat on the
/// descriptor, the file actually opened; check it before reading.
public struct OpenedFile: ~Copyable {
    public let path: String
    public let status: FileStatus
    private let descriptor: Int32

    public init(reading path: String) throws(FileError) {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FileError.opening(path, errno: errno, directory: false) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw FileError(path: path, errno: code)
        }
        self.path = path
        self.status = FileStatus(info)
        self.descriptor = fd
    }

    deinit { close(descriptor) }

    /// Reads into `buffer` until it is full or the file ends; returns the bytes read.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(FileError) -> Int {
        var used = 0
        while used < buffer.count {
            let n = Glibc.read(descriptor, buffer.baseAddress! + used, buffer.count - used)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: path, errno: errno)
            }
            if n == 0 { break }
            used += n
        }
        return used
    }
}

extension FileError {
    static func text(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// An open that failed; a symbolic link refused by O_NOFOLLOW says so.
    static func opening(_ path: String, errno code: Int32, directory: Bool) -> FileError {
        var info = stat()
        // O_DIRECTORY|O_NOFOLLOW on a link fails with ENOTDIR: lstat tells the two apart.
        let isLink = code == ENOTDIR && directory && lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
        if code == ELOOP || isLink {
            return FileError(path: path, errno: ELOOP, reason: "is a symbolic link: refusing to follow it (name the \(directory ? "directory" : "file") itself)")
        }
        if code == ENOTDIR && directory { return FileError(path: path, errno: code, reason: "is not a directory") }
        if code == ENXIO { return FileError(path: path, errno: code, reason: "is a socket or device, not a file") }
        return FileError(path: path, errno: code)
    }
}

extension FileBytes {
    /// The process's effective user ID (who owns what it creates).
    public static var effectiveUserID: UInt32 { geteuid() }

    /// A user's name (nil when the user database has none).
    public static func userName(_ uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBufferPointer { b in
            guard getpwuid_r(uid, &entry, b.baseAddress!, b.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
            return String(cString: name)
        }
    }

    /// "uid 65534 (nobody)", for messages about owners.
    public static func describeUser(_ uid: UInt32) -> String {
        "uid \(uid)" + (userName(uid).map { " (\($0))" } ?? "")
    }
}
