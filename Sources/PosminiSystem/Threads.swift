import CPosix
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A POSIX thread running one closure, joined explicitly. (No Foundation: the capture and
/// decoder threads are plain pthreads whose loops we control entirely.)
public final class OSThread: @unchecked Sendable {
    private var handle = pthread_t()
    private var joined = false

    private final class Start {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes show in `ps`/`top`).
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        do {
            try SystemCall.checked("pthread_create") {
                pthread_create(&handle, nil, { argument in
                    let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
                    _ = posmini_set_thread_name(String(start.name.utf8.prefix(15))!)
                    start.body()
                    return nil
                }, start)
            }
        } catch {
            // No thread (EAGAIN: the process or system limit): nothing a caller could do.
            preconditionFailure("\(error)")
        }
    }

    /// Waits for the thread to end. Idempotent; must not be called from the thread itself.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(handle, nil)
    }

    /// Asks for SCHED_FIFO at `priority` for the calling thread; returns the errno on failure
    /// (EPERM without CAP_SYS_NICE or an RLIMIT_RTPRIO).
    public static func requestRealTime(priority: Int32) -> Int32? {
        var parameters = sched_param()
        parameters.sched_priority = priority
        let rc = pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameters)
        return rc == 0 ? nil : rc
    }
}

/// An eventfd: a counter one thread signals and another waits on in `poll()`. Used to stop a
/// thread that sleeps in `poll()` and to wake the decoder when the ring has data.
public final class EventFD: @unchecked Sendable {
    public let descriptor: Int32

    public init() {
        descriptor = posmini_eventfd()
        precondition(descriptor >= 0, "eventfd failed: errno \(errno)")
    }

    deinit { SystemCall.close(descriptor) }

    /// Adds one to the counter (wakes a poller). Async-signal-safe, no allocation.
    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { raw in SystemCall.attempt("write") { write(descriptor, raw.baseAddress, 8) } }
    }

    /// Resets the counter; returns whether it had been signalled.
    @discardableResult
    public func drain() -> Bool {
        var value: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &value) { raw in
            // Not set: EAGAIN (the descriptor does not block), nothing read.
            (try? SystemCall.retrying("read") { read(descriptor, raw.baseAddress, 8) }) ?? 0
        }
        return n == 8 && value > 0
    }

    /// Whether the counter is set, without resetting it.
    public var isSignalled: Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return (try? SystemCall.retrying("poll") { poll(&entry, 1, 0) }) == 1
    }

    /// Waits until signalled or `timeoutMilliseconds` pass (-1: no limit); returns whether it
    /// was signalled (the counter is left set).
    public func wait(timeoutMilliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return (try? SystemCall.retrying("poll") { poll(&entry, 1, timeoutMilliseconds) }) == 1
    }
}

/// Monotonic clock, seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// This process's resource figures, for STATUS and the soak test.
public struct ProcessFigures: Sendable, Hashable {
    /// Resident memory, KiB (/proc/self/statm).
    public var residentKiB: Int
    /// Bytes malloc has handed out and not had back (mallinfo2's uordblks + hblkhd).
    public var heapBytes: Int
    public var descriptors: Int
    public var threads: Int

    public static func current() -> ProcessFigures {
        let statm = String(decoding: (try? FileBytes.read("/proc/self/statm", limit: 256)) ?? [], as: UTF8.self)
        let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        // The listing's own descriptor is among them while it is read.
        let descriptors = max(0, FileBytes.entries(ofDirectory: "/proc/self/fd").count - 1)
        let threads = FileBytes.entries(ofDirectory: "/proc/self/task").count
        return ProcessFigures(residentKiB: pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024,
                              heapBytes: Int(posmini_heap_in_use()), descriptors: descriptors, threads: threads)
    }
}
