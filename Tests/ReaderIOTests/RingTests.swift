import Testing
import Synchronization
import ReaderIO

@Suite("SPSC ring")
struct RingTests {
    @Test("capacity rounds up to a power of two; reads return what was written, in order, across the wrap")
    func order() {
        let ring = SPSCRing<Int32>(minimumCapacity: 100)
        #expect(ring.capacity == 128)
        var next: Int32 = 0, expected: Int32 = 0
        var out = [Int32](repeating: -1, count: 50)
        for round in 0..<40 {
            let chunk = (0..<(round % 7 + 30)).map { _ in defer { next += 1 }; return next }
            #expect(chunk.withUnsafeBufferPointer { ring.write($0) } == chunk.count)
            while ring.readable > 0 {
                let n = out.withUnsafeMutableBufferPointer { ring.read(into: $0) }
                for v in out[0..<n] {
                    #expect(v == expected)
                    expected += 1
                }
            }
        }
        #expect(expected == next && ring.dropped == 0)
    }

    @Test("a full ring cuts the write short, counts what it left out, and never splits a frame")
    func overflow() {
        let ring = SPSCRing<Float>(minimumCapacity: 16)
        let data = [Float](repeating: 1, count: 12)
        #expect(data.withUnsafeBufferPointer { ring.write($0, granule: 2) } == 12)
        // 4 free: a 3-sample frame fits once.
        #expect(data.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[0..<9]), granule: 3) } == 3)
        #expect(ring.dropped == 6)
        #expect(ring.writable == 1)
        #expect(data.withUnsafeBufferPointer { ring.write($0) } == 1)
        #expect(ring.dropped == 17)
        var out = [Float](repeating: 0, count: 32)
        #expect(out.withUnsafeMutableBufferPointer { ring.read(into: $0) } == 16)
        #expect(out.withUnsafeMutableBufferPointer { ring.read(into: $0) } == 0)
    }

    @Test("a cut write leaves a gap that readContinuous stops at and reports once; reads on either side stay in order")
    func gaps() {
        let ring = SPSCRing<Int32>(minimumCapacity: 8)
        let values = (0..<20).map { Int32($0) }
        var out = [Int32](repeating: -1, count: 16)
        // 8 fit, 2 are lost: continuity breaks after the 8th.
        #expect(values.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[0..<10])) } == 8)
        // Full again: no second gap at the same place.
        #expect(values.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[10..<12])) } == 0)
        #expect(ring.gaps == 1)
        var r = out.withUnsafeMutableBufferPointer { ring.readContinuous(into: UnsafeMutableBufferPointer(rebasing: $0[0..<5])) }
        #expect(r.count == 5 && !r.gapAfter)
        #expect(values.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[12..<15])) } == 3)
        r = out.withUnsafeMutableBufferPointer { ring.readContinuous(into: $0) }
        #expect(r.count == 3 && r.gapAfter, "the read stops at the gap")
        #expect(Array(out[0..<3]) == [5, 6, 7])
        r = out.withUnsafeMutableBufferPointer { ring.readContinuous(into: $0) }
        #expect(r.count == 3 && !r.gapAfter)
        #expect(Array(out[0..<3]) == [12, 13, 14])
        // A source's own loss (an overrun) marks a gap too.
        ring.markGap()
        _ = values.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[15..<17])) }
        r = out.withUnsafeMutableBufferPointer { ring.readContinuous(into: $0) }
        #expect(r.count == 0 && r.gapAfter)
        r = out.withUnsafeMutableBufferPointer { ring.readContinuous(into: $0) }
        #expect(r.count == 2 && !r.gapAfter && out[0] == 15)
        #expect(ring.gaps == 2)
    }

    @Test("when the gap queue is full nothing more is written until the consumer takes a gap; the next loss is then on record")
    func gapQueueFull() {
        let ring = SPSCRing<Int32>(minimumCapacity: 128)
        let four: [Int32] = [1, 2, 3, 4]
        var out = [Int32](repeating: 0, count: 4)
        // 64 gaps with a sample before each: the queue holds 64.
        for _ in 0..<64 {
            _ = four.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[0..<1])) }
            ring.markGap()
        }
        #expect(ring.gaps == 64)
        _ = four.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[0..<1])) }
        ring.markGap()
        // The 65th gap is owed: the write that follows is dropped whole.
        #expect(four.withUnsafeBufferPointer { ring.write($0) } == 0)
        #expect(ring.dropped == 4)
        // The consumer moves on (taking gaps off the queue as it passes them).
        var gapsSeen = 0
        while true {
            let r = out.withUnsafeMutableBufferPointer { ring.readContinuous(into: $0) }
            if r.gapAfter { gapsSeen += 1 }
            if r.count == 0 && !r.gapAfter { break }
        }
        #expect(gapsSeen == 64)
        #expect(four.withUnsafeBufferPointer { ring.write($0) } == 4)
        #expect(ring.gaps == 65)
        let r = out.withUnsafeMutableBufferPointer { ring.readContinuous(into: $0) }
        #expect(r.count == 0 && r.gapAfter, "the owed gap comes before the samples written after it")
        #expect(out.withUnsafeMutableBufferPointer { ring.readContinuous(into: $0) }.count == 4)
    }

    /// The scaled-down stress test (the benchmark moves 100 M+): two threads, every sample
    /// checked, odd chunk sizes on both sides so the wrap falls everywhere.
    @Test("two threads move 4 M samples, each one arriving once and in order")
    func twoThreads() {
        let total = 4_000_000
        let ring = SPSCRing<UInt32>(minimumCapacity: 4_096)
        let producer = OSThread(name: "ring-producer") {
            var buffer = [UInt32](repeating: 0, count: 333)
            var next: UInt32 = 0
            while Int(next) < total {
                let n = min(buffer.count, total - Int(next))
                for i in 0..<n { buffer[i] = next &+ UInt32(i) }
                var sent = 0
                while sent < n {
                    sent += buffer.withUnsafeBufferPointer { ring.write(UnsafeBufferPointer(rebasing: $0[sent..<n])) }
                }
                next &+= UInt32(n)
            }
        }
        var received = 0
        var wrong = 0
        var out = [UInt32](repeating: 0, count: 517)
        while received < total {
            let n = out.withUnsafeMutableBufferPointer { ring.read(into: $0) }
            for i in 0..<n where out[i] != UInt32(received + i) { wrong += 1 }
            received += n
        }
        producer.join()
        #expect(received == total)
        #expect(wrong == 0)
        #expect(ring.readable == 0)
    }
}
