import Testing
@testable import SwipeDecoder

/// Every SIMD kernel against its plain-loop reference, over lengths that exercise the vector
/// body and the scalar tail.
@Suite("SIMD kernels match their references")
struct KernelTests {
    static let lengths = [0, 1, 2, 3, 15, 16, 17, 31, 48, 97, 1_000]

    func randomFloats(_ n: Int, seed: UInt64) -> [Float] {
        var rng = TestRandom(state: seed)
        return (0..<n).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    @Test("Int16 → Float conversion", arguments: lengths)
    func convert(n: Int) {
        var rng = TestRandom(state: UInt64(n))
        let input = (0..<n).map { _ in Int16.random(in: .min ... .max, using: &rng) } + [Int16.min, Int16.max]
        var output = [Float](repeating: .nan, count: input.count)
        input.withUnsafeBufferPointer { i in output.withUnsafeMutableBufferPointer { Kernels.convert(i, into: $0) } }
        #expect(output == Kernels.convertReference(input))
    }

    @Test("block moments (the gate's per-block sum and sum of squares about the DC estimate)", arguments: lengths)
    func blockMoments(n: Int) {
        let x = randomFloats(n, seed: UInt64(n) + 100)
        let centre: Float = 0.125
        let fast = x.withUnsafeBufferPointer { Kernels.blockMoments($0, centre: centre) }
        let slow = Kernels.blockMomentsReference(x, centre: centre)
        #expect(abs(fast.sum - slow.sum) <= 1e-4 * Float(max(1, n)))
        #expect(abs(fast.sumOfSquares - slow.sumOfSquares) <= 1e-4 * Float(max(1, n)))
    }

    @Test("moving average", arguments: [0, 1, 3, 40])
    func movingAverage(half: Int) {
        for n in Self.lengths {
            let x = randomFloats(n, seed: UInt64(n * 7 + half))
            var out = [Float](repeating: 0, count: n)
            let prefix = UnsafeMutableBufferPointer<Double>.allocate(capacity: n + 1)
            defer { prefix.deallocate() }
            x.withUnsafeBufferPointer { i in out.withUnsafeMutableBufferPointer { Kernels.movingAverage(i, half: half, into: $0, prefix: prefix) } }
            let reference = Kernels.movingAverageReference(x, half: half)
            #expect(zip(out, reference).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }

    @Test("local extrema with threshold", arguments: [0, 0.2, 0.9])
    func localExtrema(threshold: Float) {
        for n in Self.lengths {
            var x = randomFloats(n, seed: UInt64(n * 13))
            // Plateaus: equal neighbours are where the conditions differ by a strict sign.
            for i in stride(from: 5, to: n, by: 11) where i + 1 < n { x[i + 1] = x[i] }
            var found: [Int32] = []
            x.withUnsafeBufferPointer { Kernels.localExtrema($0, threshold: threshold, into: &found) }
            #expect(found == Kernels.localExtremaReference(x, threshold: threshold))
        }
    }

    @Test("band-pass from one prefix sum", arguments: [(0, 2), (1, 5), (3, 40)])
    func bandPass(smooth: Int, baseline: Int) {
        for n in Self.lengths {
            let x = randomFloats(n, seed: UInt64(n * 3 + smooth))
            var out = [Float](repeating: 0, count: n)
            let prefix = UnsafeMutableBufferPointer<Double>.allocate(capacity: n + 1)
            defer { prefix.deallocate() }
            x.withUnsafeBufferPointer { i in
                out.withUnsafeMutableBufferPointer { Kernels.bandPass(i, smoothHalf: smooth, baselineHalf: baseline, into: $0, prefix: prefix) }
            }
            let reference = Kernels.bandPassReference(x, smoothHalf: smooth, baselineHalf: baseline)
            #expect(zip(out, reference).allSatisfy { abs($0 - $1) < 1e-5 })
        }
    }

    @Test("block peaks and sum")
    func segmentStatistics() {
        for n in Self.lengths {
            let x = randomFloats(n, seed: UInt64(n * 17))
            for block in [1, 7, 16, 22, 44, 48] {
                var peaks: [Float] = []
                x.withUnsafeBufferPointer { Kernels.blockPeaks($0, block: block, into: &peaks) }
                #expect(peaks == Kernels.blockPeaksReference(x, block: block))
            }
            let sum = x.withUnsafeBufferPointer { Kernels.sum($0) }
            #expect(abs(sum - x.reduce(0, +)) < 1e-3)
        }
    }

    @Test("block sums and extremes", arguments: [1, 7, 8, 16, 22, 44])
    func blockExtremes(block: Int) {
        for n in Self.lengths {
            let x = randomFloats(n, seed: UInt64(n * 31 + block))
            let blocks = n / block
            var sums = [Double](repeating: .nan, count: max(1, blocks))
            var maxima = [Float](repeating: .nan, count: max(1, blocks))
            var minima = [Float](repeating: .nan, count: max(1, blocks))
            let total = x.withUnsafeBufferPointer { xb in
                sums.withUnsafeMutableBufferPointer { s in
                    maxima.withUnsafeMutableBufferPointer { hi in
                        minima.withUnsafeMutableBufferPointer { lo in
                            Kernels.blockExtremes(xb, block: block, sums: s.baseAddress!, maxima: hi.baseAddress!, minima: lo.baseAddress!)
                        }
                    }
                }
            }
            let reference = Kernels.blockExtremesReference(x, block: block)
            #expect(abs(total - reference.total) < 1e-3)
            #expect(reference.sums.count == blocks)
            for b in 0..<blocks {
                #expect(abs(sums[b] - reference.sums[b]) < 1e-4)
                #expect(maxima[b] == reference.maxima[b] && minima[b] == reference.minima[b])
            }
        }
    }

    @Test("correlation with a sinusoid", arguments: [0.001, 0.3, 2.5])
    func correlate(step: Double) {
        for n in Self.lengths {
            var rng = TestRandom(state: UInt64(n) &+ 999)
            let x = (0..<n).map { _ in Double.random(in: -1...1, using: &rng) }
            let fast = x.withUnsafeBufferPointer { Kernels.correlate($0, step: step, phase: 0.7) }
            let slow = Kernels.correlateReference(x, step: step, phase: 0.7)
            #expect(abs(fast.cos - slow.cos) < 1e-9 * Double(max(1, n)))
            #expect(abs(fast.sin - slow.sin) < 1e-9 * Double(max(1, n)))
        }
    }

    @Test("subtracting a sinusoid", arguments: [0.001, 0.05, 1.9])
    func subtractSinusoid(w: Double) {
        for n in Self.lengths + [200_000] {
            let x = randomFloats(n, seed: UInt64(n * 3 + 1))
            var fast = x
            fast.withUnsafeMutableBufferPointer { Kernels.subtractSinusoid($0, w: w, a: 0.3, b: -0.2) }
            let slow = Kernels.subtractSinusoidReference(x, w: w, a: 0.3, b: -0.2)
            var worst: Float = 0
            for i in 0..<n { worst = max(worst, abs(fast[i] - slow[i])) }
            // Float arithmetic on a value of at most 1.4: a few ulps, never a drifting phase.
            #expect(worst < 1e-5)
        }
    }

    @Test("k-th smallest (quickselect)")
    func kth() {
        for n in Self.lengths where n > 0 {
            var rng = TestRandom(state: UInt64(n) &+ 4242)
            // Distinct values, many duplicates, sorted and reversed inputs.
            let inputs: [[Float]] = [
                randomFloats(n, seed: UInt64(n)),
                (0..<n).map { _ in Float(Int.random(in: 0...3, using: &rng)) },
                (0..<n).map { Float($0) },
                (0..<n).map { Float(n - $0) },
                [Float](repeating: 2, count: n),
            ]
            for input in inputs {
                for k in Set([0, n / 2, n - 1, (n * 95) / 100]) {
                    var copy = input
                    #expect(selectKth(&copy, k) == selectKthReference(input, k))
                    #expect(copy.sorted() == input.sorted())
                }
            }
        }
    }
}
