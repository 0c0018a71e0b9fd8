import Testing
import ReaderIO
#if canImport(Glibc)
import Glibc
#endif

/// The one system-call helper: EINTR is retried, a failure names its call, and whole transfers
/// take as many calls as they need.
@Suite("system calls through one helper")
struct SystemCallTests {
    @Test("a call interrupted by a signal is made again; its result comes back")
    func retriesInterrupted() throws {
        var calls = 0
        let result = try SystemCall.retrying("read") { () -> Int in
            calls += 1
            if calls < 3 {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(result == 7)
        #expect(calls == 3)
    }

    @Test("a failure is thrown with the call's name and its errno, after one call")
    func failureNamesTheCall() {
        var calls = 0
        #expect(throws: SystemCallError(call: "open", errno: ENOENT)) {
            try SystemCall.retrying("open") { () -> Int32 in
                calls += 1
                errno = ENOENT
                return -1
            }
        }
        #expect(calls == 1)
        let error = SystemCallError(call: "open", errno: ENOENT)
        #expect(error.description == "open: No such file or directory")
        #expect(throws: SystemCallError(call: "pthread_create", errno: EAGAIN)) {
            try SystemCall.checked("pthread_create") { EAGAIN }
        }
        #expect(throws: Never.self) { try SystemCall.checked("pthread_join") { 0 } }
    }

    @Test("attempt hands the failure back (retrying EINTR first); close is made once and reports nothing on success")
    func attemptAndClose() {
        var calls = 0
        let failed = SystemCall.attempt("mkdir") { () -> Int32 in
            calls += 1
            errno = calls == 1 ? EINTR : EEXIST
            return -1
        }
        #expect(calls == 2)
        guard case .failure(let error) = failed else { Issue.record("no failure"); return }
        #expect(error == SystemCallError(call: "mkdir", errno: EEXIST))
        guard case .success(let value) = SystemCall.attempt("read", { 3 }) else { Issue.record("no success"); return }
        #expect(value == 3)
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        #expect(SystemCall.close(ends[0]) == nil)
        #expect(SystemCall.close(ends[1]) == nil)
    }

    @Test("writeAll and readFully move more than a pipe holds, however many calls it takes")
    func wholeTransfers() throws {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let count = 300_000                       // several times a pipe's 64 KiB
        let sent = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let writer = ends[1]
        let thread = OSThread(name: "pipe writer") { sent.withUnsafeBytes { try? SystemCall.writeAll(writer, $0) }; close(writer) }
        var received = [UInt8](repeating: 0, count: count + 10)
        let n = try received.withUnsafeMutableBytes { raw in
            try Result { () throws(SystemCallError) in try SystemCall.readFully(ends[0], into: raw) }.get()
        }
        thread.join()
        #expect(n == count, "the read stops at the end of the input")
        #expect(Array(received[..<n]) == sent)
        // At the end, a read gives 0.
        var tail = [UInt8](repeating: 0, count: 4)
        let more = try tail.withUnsafeMutableBytes { raw in
            try Result { () throws(SystemCallError) in try SystemCall.readSome(ends[0], into: raw) }.get()
        }
        #expect(more == 0)
    }

    @Test("a write to a pipe nobody reads fails as EPIPE, named")
    func brokenPipe() {
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        close(ends[0])
        defer { close(ends[1]) }
        let old = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, old) }
        #expect(throws: SystemCallError(call: "write", errno: EPIPE)) {
            try [UInt8](repeating: 1, count: 10).withUnsafeBytes { raw in
                try Result { () throws(SystemCallError) in try SystemCall.writeAll(ends[1], raw) }.get()
            }
        }
    }
}
