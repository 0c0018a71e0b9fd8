import Synchronization

/// A single-producer, single-consumer ring of samples between the capture thread and the
/// decoder thread. Lock-free: the producer owns `tail`, the consumer owns `head`; each publishes
/// its index with a release store and reads the other's with an acquire load, and keeps a cached
/// copy of the other's index so that most calls touch no shared cache line but their own.
/// Capacity is a power of two (indices run freely and are masked). A write that does not fit is
/// cut short and the samples left out are counted: the producer never waits.
///
/// Exactly one thread may call the producer methods (`write`) and exactly one the consumer
/// methods (`read`, `readable`); that discipline is the caller's, as with any SPSC queue.
public final class SPSCRing<Element: BitwiseCopyable>: @unchecked Sendable {
    public let capacity: Int
    private let mask: Int
    private let storage: UnsafeMutablePointer<Element>
    /// The two sides' state, each on a 128-byte line pair of its own (no false sharing, also
    /// not through the adjacent-line prefetcher): the producer's published `tail` and its copy
    /// of the consumer's index, then the consumer's `head` and its copy of the producer's.
    private let lines: UnsafeMutableRawPointer
    private var tailIndex: UnsafeMutablePointer<Atomic<Int>> { lines.assumingMemoryBound(to: Atomic<Int>.self) }
    private var cachedHead: UnsafeMutablePointer<Int> { (lines + 8).assumingMemoryBound(to: Int.self) }
    private var headIndex: UnsafeMutablePointer<Atomic<Int>> { (lines + 128).assumingMemoryBound(to: Atomic<Int>.self) }
    private var cachedTail: UnsafeMutablePointer<Int> { (lines + 136).assumingMemoryBound(to: Int.self) }
    private let droppedCount = Atomic<Int>(0)

    /// Capacity: `minimumCapacity` rounded up to a power of two.
    public init(minimumCapacity: Int) {
        precondition(minimumCapacity > 0)
        var c = 1
        while c < minimumCapacity { c <<= 1 }
        capacity = c
        mask = c - 1
        storage = .allocate(capacity: c)
        lines = .allocate(byteCount: 256, alignment: 128)
        lines.bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (lines + 8).bindMemory(to: Int.self, capacity: 1).initialize(to: 0)
        (lines + 128).bindMemory(to: Atomic<Int>.self, capacity: 1).initialize(to: Atomic(0))
        (lines + 136).bindMemory(to: Int.self, capacity: 1).initialize(to: 0)
    }

    deinit {
        storage.deallocate()
        tailIndex.deinitialize(count: 1)
        headIndex.deinitialize(count: 1)
        lines.deallocate()
    }

    /// Samples the producer could not write because the ring was full (the consumer fell
    /// behind). Readable from any thread.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    // MARK: Producer

    /// Room for this many samples now (producer side).
    public var writable: Int {
        cachedHead.pointee = headIndex.pointee.load(ordering: .acquiring)
        return capacity - (tailIndex.pointee.load(ordering: .relaxed) - cachedHead.pointee)
    }

    /// Writes as many of `samples` as fit, in whole multiples of `granule` (a frame's samples,
    /// so that a cut write never splits a frame); returns how many. The rest are counted as
    /// dropped.
    @discardableResult
    public func write(_ samples: UnsafeBufferPointer<Element>, granule: Int = 1) -> Int {
        guard let source = samples.baseAddress, !samples.isEmpty else { return 0 }
        let tail = tailIndex.pointee.load(ordering: .relaxed)
        var free = capacity - (tail - cachedHead.pointee)
        if free < samples.count {
            cachedHead.pointee = headIndex.pointee.load(ordering: .acquiring)
            free = capacity - (tail - cachedHead.pointee)
        }
        let n = min(free, samples.count) / granule * granule
        if n < samples.count { droppedCount.add(samples.count - n, ordering: .relaxed) }
        guard n > 0 else { return 0 }
        let start = tail & mask
        let first = min(n, capacity - start)
        (storage + start).update(from: source, count: first)
        if first < n { storage.update(from: source + first, count: n - first) }
        tailIndex.pointee.store(tail + n, ordering: .releasing)
        return n
    }

    // MARK: Consumer

    /// Samples ready to read.
    public var readable: Int {
        cachedTail.pointee = tailIndex.pointee.load(ordering: .acquiring)
        return cachedTail.pointee - headIndex.pointee.load(ordering: .relaxed)
    }

    /// Reads up to `destination.count` samples; returns how many.
    public func read(into destination: UnsafeMutableBufferPointer<Element>) -> Int {
        guard let target = destination.baseAddress, !destination.isEmpty else { return 0 }
        let head = headIndex.pointee.load(ordering: .relaxed)
        var available = cachedTail.pointee - head
        if available < destination.count {
            cachedTail.pointee = tailIndex.pointee.load(ordering: .acquiring)
            available = cachedTail.pointee - head
        }
        let n = min(available, destination.count)
        guard n > 0 else { return 0 }
        let start = head & mask
        let first = min(n, capacity - start)
        target.update(from: storage + start, count: first)
        if first < n { (target + first).update(from: storage, count: n - first) }
        headIndex.pointee.store(head + n, ordering: .releasing)
        return n
    }
}

