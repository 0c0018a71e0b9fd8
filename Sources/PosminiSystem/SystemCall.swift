#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A system call that failed: its name and errno.
public struct SystemCallError: Error, Sendable, Hashable, CustomStringConvertible {
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(FileError.text(errno))" }
}

/// Every raw system call of the project goes through here: a call interrupted by a signal
/// (EINTR) is made again, a failure is thrown with the call's name, and an errno that can only
/// mean a bug in this program (`bugs`: a descriptor that is not open, a pointer outside the
/// address space) stops it, as no caller could handle it.
///
/// The deliberate exceptions, each said where it is: `connect` on the control socket (an
/// interrupted connect goes on in the kernel and must not be made again), the checks of the
/// socket systemd passed (fd 3 may not be open: EBADF is the unit's mistake, not a bug), the
/// decoder's segment mapping (`mmap`/`madvise`/`munmap` in SwipeDecoder, which depends on no
/// system module, return pointers and are never interrupted), `getgrouplist` (it reports a
/// count, not an errno), `umask` (cannot fail) and the `posmini_*` shims of CPosix.
public enum SystemCall {
    /// Errnos no correct program gets: a precondition, never a thrown error.
    public static let bugs: Set<Int32> = [EBADF, EFAULT]

    /// Calls `body` until it returns something other than -1 with EINTR. Returns what it
    /// returned (≥ 0 by the system-call convention); throws `SystemCallError` for any other
    /// failure.
    @inline(__always)
    @discardableResult
    public static func retrying<Result: BinaryInteger>(_ call: String, _ body: () -> Result) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            precondition(!bugs.contains(code), "\(call): \(FileError.text(code)): a bug in posminid")
            throw SystemCallError(call: call, errno: code)
        }
    }

    /// Like `retrying`, with the failure handed back instead of thrown: for callers that decide
    /// by its errno (EEXIST, ENOENT) or build their own error from it.
    @inline(__always)
    public static func attempt<Value: BinaryInteger>(_ call: String, _ body: () -> Value) -> Result<Value, SystemCallError> {
        do throws(SystemCallError) {
            return .success(try retrying(call, body))
        } catch {
            return .failure(error)
        }
    }

    /// close(2), never made twice: Linux has closed the descriptor even when it reports EINTR,
    /// and a second close could close a descriptor another thread just opened. Returns the
    /// failure (a write-back error of some file systems), which most callers may ignore.
    @discardableResult
    public static func close(_ fd: Int32) -> SystemCallError? {
        guard Glibc.close(fd) != 0 else { return nil }
        let code = errno
        if code == EINTR { return nil }
        precondition(!bugs.contains(code), "close: \(FileError.text(code)): a bug in posminid")
        return SystemCallError(call: "close", errno: code)
    }

    /// Like `retrying`, for calls that report an error as their return value (0 or the errno),
    /// as the pthread functions do.
    @inline(__always)
    public static func checked(_ call: String, _ body: () -> Int32) throws(SystemCallError) {
        while true {
            let code = body()
            if code == 0 { return }
            if code == EINTR { continue }
            precondition(!bugs.contains(code), "\(call): \(FileError.text(code)): a bug in posminid")
            throw SystemCallError(call: call, errno: code)
        }
    }

    /// Writes all of `bytes` to `fd`, however many calls it takes.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemCallError) {
        var written = 0
        while written < bytes.count {
            written += try retrying("write") { write(fd, bytes.baseAddress! + written, bytes.count - written) }
        }
    }

    /// Reads into `buffer` until it is full or the input ends; returns the bytes read.
    public static func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int {
        var used = 0
        while used < buffer.count {
            let n = try retrying("read") { read(fd, buffer.baseAddress! + used, buffer.count - used) }
            if n == 0 { break }
            used += n
        }
        return used
    }

    /// One read of at most `buffer.count` bytes (0 at the end of the input).
    public static func readSome(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(SystemCallError) -> Int {
        try retrying("read") { read(fd, buffer.baseAddress, buffer.count) }
    }
}
