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
