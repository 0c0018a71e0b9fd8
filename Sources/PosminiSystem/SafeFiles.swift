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

    /// fstat on an open descriptor (`path` names it in the error).
    public init(descriptor: Int32, path: String) throws(FileError) {
        var info = stat()
        try fileCall("fstat", path) { fstat(descriptor, &info) }
        self.init(info)
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

    deinit { SystemCall.close(descriptor) }

    /// Opens the directory `path`. `namesOnly`: with O_PATH, which needs only search permission
    /// (for fchownat and the like, not for writing files).
    ///
    /// The path is walked a component at a time through directory descriptors (`openat` with
    /// `O_NOFOLLOW`), so a symbolic link anywhere in it is seen. A link in a parent is followed
    /// only where the directory holding it is owned by root or by this process's user and
    /// writable by nobody else (the rule systemd's path chasing calls safe: `/var/run` → `/run`
    /// still works); a link another user could have planted is refused, naming it. A link in
    /// the last component is never followed.
    public convenience init(opening path: String, namesOnly: Bool = false) throws(FileError) {
        try self.init(opening: path, namesOnly: namesOnly, asParent: false)
    }

    /// `asParent`: `path` is the directory holding the file or directory wanted, so a link in
    /// its last component is treated like one in any other parent (followed only out of a safe
    /// directory).
    convenience init(opening path: String, namesOnly: Bool, asParent: Bool) throws(FileError) {
        let access = namesOnly ? posmini_o_path() : O_RDONLY
        let fd = try Self.walk(path, finalAccess: access, followLast: asParent)
        self.init(path: path, descriptor: fd, namesOnly: namesOnly)
    }

    /// Opens the directory `path`, making it first (mode `mode`, less the umask) when it does not
    /// exist; `created` says whether this call made it. The parent is walked as `init(opening:)`
    /// walks, and the directory is made and opened through the parent's descriptor.
    public static func openOrCreate(_ path: String, mode: UInt32) throws(FileError) -> (directory: Directory, created: Bool) {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let (parentPath, name) = try? split(trimmed) else {
            // "/", "." or "..": nothing to make.
            return (try Directory(opening: path), false)
        }
        let parent = try Directory(opening: parentPath, namesOnly: true, asParent: true)
        var created = true
        if case .failure(let error) = SystemCall.attempt("mkdirat", { mkdirat(parent.descriptor, name, mode_t(mode)) }) {
            guard error.errno == EEXIST else { throw FileError(path: path, errno: error.errno, reason: "cannot create the directory: \(FileError.text(error.errno))") }
            created = false
        }
        switch SystemCall.attempt("openat", { openat(parent.descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }) {
        case .success(let fd): return (Directory(path: path, descriptor: fd, namesOnly: false), created)
        case .failure(let error): throw FileError.opening(path, errno: error.errno, directory: true, at: parent.descriptor, name: name)
        }
    }

    /// Why `openOrCreatePrivate` refused a directory.
    public enum PrivacyRefusal: Error, Sendable {
        /// It could not be made, opened or examined.
        case cannotOpen(FileError)
        /// It belongs to someone else, or others may write to it.
        case notPrivate(FileStatus)
    }

    /// `openOrCreate` (mode 700 when made), then refused unless one of `owners` owns it and
    /// nobody else may write to it (checked with fstat on the descriptor opened without
    /// following a symbolic link).
    public static func openOrCreatePrivate(_ path: String, owners: Set<UInt32>) throws(PrivacyRefusal) -> Directory {
        let directory: Directory
        let status: FileStatus
        do {
            directory = try openOrCreate(path, mode: 0o700).directory
            status = try directory.status()
        } catch {
            throw .cannotOpen(error)
        }
        guard status.isPrivate(to: owners) else { throw .notPrivate(status) }
        return directory
    }

    /// Most symbolic links one walk follows (the kernel's own limit is 40).
    static let linkLimit = 32

    /// Walks `path` from `/` (or the working directory) one component at a time; returns a
    /// descriptor of the last one opened with `finalAccess`.
    static func walk(_ path: String, finalAccess: Int32, followLast: Bool = false) throws(FileError) -> Int32 {
        guard !path.isEmpty else { throw FileError(path: path, errno: ENOENT, reason: "an empty path") }
        var pending = path.split(separator: "/").map(String.init)
        var walked = path.hasPrefix("/") ? "" : "."
        var current = try fileCall("open", path) { open(path.hasPrefix("/") ? "/" : ".", posmini_o_path() | O_DIRECTORY | O_CLOEXEC) }
        defer { if current >= 0 { SystemCall.close(current) } }
        var followed = 0
        var reachedEnd = pending.isEmpty
        while !pending.isEmpty {
            let name = pending.removeFirst()
            if name == "." && !pending.isEmpty { continue }
            let last = pending.isEmpty
            let here = walked + "/" + name
            var code: Int32
            switch SystemCall.attempt("openat", { openat(current, name, (last ? finalAccess : posmini_o_path()) | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }) {
            case .success(let next):
                // O_PATH with O_NOFOLLOW opens a symbolic link itself: only a directory moves on.
                var opened = stat()
                let kind = (try? SystemCall.retrying("fstat") { fstat(next, &opened) }) != nil ? opened.st_mode & S_IFMT : 0
                if kind == S_IFDIR {
                    SystemCall.close(current)
                    current = next
                    walked = here
                    if last { reachedEnd = true }
                    continue
                }
                SystemCall.close(next)
                code = kind == S_IFLNK ? ELOOP : ENOTDIR
            case .failure(let error):
                code = error.errno
            }
            var link = stat()
            let isLink = (code == ENOTDIR || code == ELOOP)
                && (try? SystemCall.retrying("fstatat") { fstatat(current, name, &link, AT_SYMLINK_NOFOLLOW) }) != nil
                && link.st_mode & S_IFMT == S_IFLNK
            guard isLink, !last || followLast else {
                throw FileError.opening(last ? path : here, errno: code, directory: true, at: current, name: name)
            }
            // A link in a parent: followed only out of a directory nobody else could have put it in.
            let holder = try FileStatus(descriptor: current, path: here)
            guard holder.isPrivate(to: [0, geteuid()]) else {
                let folder = walked.isEmpty ? "/" : walked
                throw FileError(path: here, errno: ELOOP, reason: """
                    is a symbolic link in \(folder), which is owned by \(FileBytes.describeUser(holder.owner)) with mode \(holder.modeText): \
                    anyone who can write there could have planted it, so it is not followed (name the real directory)
                    """)
            }
            followed += 1
            guard followed <= linkLimit else { throw FileError(path: path, errno: ELOOP, reason: "too many symbolic links") }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = try fileCall("readlinkat", here) { readlinkat(current, name, &buffer, buffer.count - 1) }
            guard n > 0 else { throw FileError(path: here, errno: ENOENT) }
            let target = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            pending = target.split(separator: "/").map(String.init) + pending
            if target.hasPrefix("/") {
                let root = try fileCall("open", "/") { open("/", posmini_o_path() | O_DIRECTORY | O_CLOEXEC) }
                SystemCall.close(current)
                current = root
                walked = ""
            }
        }
        if !reachedEnd {
            // Only "/", "." or a link to "/" was named: open it with the access asked for.
            return try fileCall("openat", path) { openat(current, ".", finalAccess | O_DIRECTORY | O_CLOEXEC) }
        }
        let fd = current
        current = -1
        return fd
    }

    /// The directory holding `path` (opened as `init(opening:)` does) and the last name of `path`.
    public static func opening(containing path: String, namesOnly: Bool = false) throws(FileError) -> (directory: Directory, name: String) {
        let (parent, name) = try split(path)
        return (try Directory(opening: parent, namesOnly: namesOnly, asParent: true), name)
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
        try FileStatus(descriptor: descriptor, path: path)
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
        var open = true
        func fail(_ what: String, _ error: SystemCallError) -> FileError {
            if open { SystemCall.close(fd) }
            _ = SystemCall.attempt("unlinkat") { unlinkat(descriptor, temporary, 0) }
            return FileError(path: target, errno: error.errno, reason: "\(what): \(FileError.text(error.errno))")
        }
        /// Every step through `SystemCall`; a failure closes and removes the temporary file.
        func step<R: BinaryInteger>(_ what: String, _ call: String, _ body: () -> R) throws(FileError) {
            if case .failure(let error) = SystemCall.attempt(call, body) { throw fail(what, error) }
        }
        if let owner { try step("cannot set the owner", "fchown") { fchown(fd, owner.user, owner.group) } }
        // Exactly `mode`, whatever the umask: the caller says who may read the file.
        try step("cannot set the mode", "fchmod") { fchmod(fd, mode_t(mode)) }
        do { try SystemCall.writeAll(fd, UnsafeRawBufferPointer(bytes)) } catch { throw fail("cannot write", error) }
        try step("cannot flush", "fsync") { fsync(fd) }
        open = false
        if let error = SystemCall.close(fd) { throw fail("cannot write", error) }
        if replacing {
            try step("cannot rename into place", "renameat") { renameat(descriptor, temporary, descriptor, name) }
        } else {
            try linkNew(temporary, as: name, target: target)
        }
        try sync()
    }

    /// Renames `temporary` to `name` unless `name` exists. renameat2(RENAME_NOREPLACE) where the
    /// file system has it; else a hard link (which never replaces either) and an unlink.
    private func linkNew(_ temporary: String, as name: String, target: String) throws(FileError) {
        let unlinkTemporary = { _ = SystemCall.attempt("unlinkat") { unlinkat(self.descriptor, temporary, 0) } }
        guard case .failure(let refused) = SystemCall.attempt("renameat2", { posmini_rename_noreplace(descriptor, temporary, descriptor, name) }) else { return }
        var code = refused.errno
        if code == EINVAL || code == ENOSYS {
            switch SystemCall.attempt("linkat", { linkat(descriptor, temporary, descriptor, name, 0) }) {
            case .success:
                unlinkTemporary()
                return
            case .failure(let error):
                code = error.errno
            }
        }
        unlinkTemporary()
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
            switch SystemCall.attempt("openat", { openat(descriptor, temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600)) }) {
            case .success(let fd): return (fd, temporary)
            case .failure(let error): code = error.errno
            }
            if code != EEXIST { break }
        }
        throw FileError(path: pathOf(name), errno: code, reason: "cannot create a temporary file beside it: \(FileError.text(code))")
    }

    /// Flushes the directory's entries (a rename, a new name) to the disk.
    public func sync() throws(FileError) {
        var fd = descriptor
        if namesOnly {
            fd = try fileCall("openat", path) { openat(descriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        }
        defer { if fd != descriptor { SystemCall.close(fd) } }
        try fileCall("fsync", path, step: "cannot flush the directory") { fsync(fd) }
    }

    /// Gives `name` (in here; a symbolic link there is changed itself, never what it points to)
    /// to group `group`.
    public func setGroup(of name: String, to group: UInt32) throws(FileError) {
        try fileCall("fchownat", pathOf(name), step: "cannot change the group") {
            fchownat(descriptor, name, UInt32.max, group, AT_SYMLINK_NOFOLLOW)
        }
    }

    /// fstat of `name` in here, not following a symbolic link; nil when there is no such name.
    public func status(of name: String) throws(FileError) -> FileStatus? {
        var info = stat()
        if case .failure(let error) = SystemCall.attempt("fstatat", { fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) }) {
            if error.errno == ENOENT { return nil }
            throw FileError(path: pathOf(name), errno: error.errno)
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
        let fd: Int32
        switch SystemCall.attempt("open", { open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) }) {
        case .success(let opened): fd = opened
        case .failure(let error): throw FileError.opening(path, errno: error.errno, directory: false)
        }
        let status: FileStatus
        do {
            status = try FileStatus(descriptor: fd, path: path)
        } catch {
            SystemCall.close(fd)
            throw error
        }
        self.path = path
        self.status = status
        self.descriptor = fd
    }

    deinit { SystemCall.close(descriptor) }

    /// Reads into `buffer` until it is full or the file ends; returns the bytes read.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(FileError) -> Int {
        do { return try SystemCall.readFully(descriptor, into: buffer) } catch { throw FileError(path: path, errno: error.errno) }
    }
}

/// A system call about `path` through `SystemCall`: a failure becomes a `FileError` naming the
/// path (and `step` in its reason, when the errno alone would not say what failed).
@inline(__always)
@discardableResult
func fileCall<R: BinaryInteger>(_ call: String, _ path: String, step: String? = nil, _ body: () -> R) throws(FileError) -> R {
    switch SystemCall.attempt(call, body) {
    case .success(let result): return result
    case .failure(let error):
        throw FileError(path: path, errno: error.errno, reason: step.map { "\($0): \(FileError.text(error.errno))" })
    }
}

extension FileError {
    static func text(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// An open that failed; a symbolic link refused by O_NOFOLLOW says so.
    static func opening(_ path: String, errno code: Int32, directory: Bool, at parent: Int32? = nil, name: String? = nil) -> FileError {
        var info = stat()
        // O_DIRECTORY|O_NOFOLLOW on a link fails with ENOTDIR: lstat tells the two apart.
        let looked = if let parent, let name {
            SystemCall.attempt("fstatat") { fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) }
        } else {
            SystemCall.attempt("lstat") { lstat(path, &info) }
        }
        let isLink = code == ENOTDIR && directory && (try? looked.get()) != nil && info.st_mode & S_IFMT == S_IFLNK
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
            guard (try? SystemCall.checked("getpwuid_r") { getpwuid_r(uid, &entry, b.baseAddress!, b.count, &result) }) != nil,
                  result != nil, let name = entry.pw_name else { return nil }
            return String(cString: name)
        }
    }

    /// "uid 65534 (nobody)", for messages about owners.
    public static func describeUser(_ uid: UInt32) -> String {
        "uid \(uid)" + (userName(uid).map { " (\($0))" } ?? "")
    }
}
