import Synchronization

/// A single-producer, single-consumer ring of samples between the capture thread and the
/// decoder thread. Lock-free: the producer owns `tail`, the consumer owns `head`; each publishes
/// its index with a release store and reads the other's with an acquire load, and keeps a cached
/// copy of the other's index so that most calls touch no shared cache line but their own.
/// Capacity is a power of two (indices run freely and are masked). A write that does not fit is
/// cut short and the samples left out are counted: the producer never waits.
///
/// Samples lost are never silently spliced over: where a write was cut short (or the producer
/// says the source itself lost samples, `markGap`), the ring records a gap, and
/// `readContinuous` stops there and says so, so that the consumer can treat what follows as a
/// new stream. Gap positions wait in a small queue of their own; when it is full the producer
/// drops whole writes until the consumer catches up, and then records the gap.
///
/// Exactly one thread may call the producer methods (`write`, `markGap`) and exactly one the
/// consumer methods (`read`, `readContinuous`, `readable`); that discipline is the caller's, as
/// with any SPSC queue.
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
    /// Gap positions (sample indices where continuity breaks), a queue of `gapSlots`.
    private static var gapSlots: Int { 64 }
    private let gapStorage: UnsafeMutablePointer<Int>
    private let gapTail = Atomic<Int>(0)
    private let gapHead = Atomic<Int>(0)
    private let gapCount = Atomic<Int>(0)
    /// Producer side: the last gap recorded, and one still to record (the queue was full).
    private var lastGap = -1
    private var owedGap: Int?
    /// Consumer side: the next gap, taken off the queue.
    private var nextGap: Int?

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
        gapStorage = .allocate(capacity: Self.gapSlots)
        gapStorage.initialize(repeating: 0, count: Self.gapSlots)
    }

    deinit {
        storage.deallocate()
        gapStorage.deallocate()
        tailIndex.deinitialize(count: 1)
        headIndex.deinitialize(count: 1)
        lines.deallocate()
    }

    /// Samples the producer could not write because the ring was full (the consumer fell
    /// behind). Readable from any thread.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    /// Breaks in continuity recorded (cut writes and `markGap`). Readable from any thread.
    public var gaps: Int { gapCount.load(ordering: .relaxed) }

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
        if let gap = owedGap {
            // Nothing may follow a gap that is not on record yet.
            guard recordGap(gap) else {
                droppedCount.add(samples.count, ordering: .relaxed)
                return 0
            }
            owedGap = nil
        }
        var free = capacity - (tail - cachedHead.pointee)
        if free < samples.count {
            cachedHead.pointee = headIndex.pointee.load(ordering: .acquiring)
            free = capacity - (tail - cachedHead.pointee)
        }
        let n = min(free, samples.count) / granule * granule
        if n < samples.count {
            droppedCount.add(samples.count - n, ordering: .relaxed)
            if !recordGap(tail + n) { owedGap = tail + n }
        }
        guard n > 0 else { return 0 }
        let start = tail & mask
        let first = min(n, capacity - start)
        (storage + start).update(from: source, count: first)
        if first < n { storage.update(from: source + first, count: n - first) }
        tailIndex.pointee.store(tail + n, ordering: .releasing)
        return n
    }

    /// The source lost samples before the next write (a device overrun): what follows is not
    /// continuous with what came before.
    public func markGap() {
        let tail = tailIndex.pointee.load(ordering: .relaxed)
        if owedGap == nil && !recordGap(tail) { owedGap = tail }
    }

    /// Puts a gap at `position` on the queue (once per position); false when the queue is full.
    private func recordGap(_ position: Int) -> Bool {
        guard position != lastGap else { return true }
        let tail = gapTail.load(ordering: .relaxed)
        guard tail - gapHead.load(ordering: .acquiring) < Self.gapSlots else { return false }
        gapStorage[tail & (Self.gapSlots - 1)] = position
        gapTail.store(tail + 1, ordering: .releasing)
        gapCount.add(1, ordering: .relaxed)
        lastGap = position
        return true
    }

    // MARK: Consumer

    /// Samples ready to read.
    public var readable: Int {
        cachedTail.pointee = tailIndex.pointee.load(ordering: .acquiring)
        return cachedTail.pointee - headIndex.pointee.load(ordering: .relaxed)
    }

    /// Reads up to `destination.count` samples, never across a gap: `gapAfter` says that the
    /// samples after these are not continuous with them (samples were lost in between).
    public func readContinuous(into destination: UnsafeMutableBufferPointer<Element>) -> (count: Int, gapAfter: Bool) {
        guard let target = destination.baseAddress, !destination.isEmpty else { return (0, false) }
        let head = headIndex.pointee.load(ordering: .relaxed)
        // The producer records a gap before its index passes it: with the index read first,
        // every gap inside what is readable is on the queue.
        var tail = cachedTail.pointee
        if tail - head < destination.count {
            tail = tailIndex.pointee.load(ordering: .acquiring)
            cachedTail.pointee = tail
        }
        if nextGap == nil {
            let first = gapHead.load(ordering: .relaxed)
            if gapTail.load(ordering: .acquiring) > first {
                nextGap = gapStorage[first & (Self.gapSlots - 1)]
                gapHead.store(first + 1, ordering: .releasing)
            }
        }
        var n = min(destination.count, tail - head)
        if let gap = nextGap { n = max(0, min(n, gap - head)) }
        if n > 0 {
            let start = head & mask
            let first = min(n, capacity - start)
            target.update(from: storage + start, count: first)
            if first < n { (target + first).update(from: storage, count: n - first) }
            headIndex.pointee.store(head + n, ordering: .releasing)
        }
        if let gap = nextGap, gap <= head + n {
            nextGap = nil
            return (n, true)
        }
        return (n, false)
    }

    /// Reads up to `destination.count` samples, across gaps (for a consumer to which they do
    /// not matter); returns how many.
    public func read(into destination: UnsafeMutableBufferPointer<Element>) -> Int {
        var total = 0
        while total < destination.count {
            let (n, gap) = readContinuous(into: UnsafeMutableBufferPointer(rebasing: destination[total...]))
            total += n
            if n == 0 && !gap { break }
        }
        return total
    }
}
