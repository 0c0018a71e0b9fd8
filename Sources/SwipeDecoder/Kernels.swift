#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The decoder's inner loops, each as a SIMD kernel and a plain-loop reference that tests hold
/// it to. Lanes are 16 wide; the tails run scalar.
public enum Kernels {
    public typealias Vector = SIMD16<Float>
    static let lanes = Vector.scalarCount
    /// 0, 1, 2, … in the lanes: masks the lanes of a vector past the end of a block.
    static let laneIndex: Vector = {
        var v = Vector()
        for k in 0..<lanes { v[k] = Float(k) }
        return v
    }()

    // MARK: Conditioning: Int16 → Float

    /// Converts 16-bit samples to Float in [-1, 1). A plain loop over raw pointers, which the
    /// compiler vectorises (the generic SIMD integer-to-float initialisers are not inlined).
    public static func convert(_ input: UnsafeBufferPointer<Int16>, into output: UnsafeMutableBufferPointer<Float>) {
        precondition(output.count >= input.count)
        guard let src = input.baseAddress, let dst = output.baseAddress else { return }
        let scale: Float = 1.0 / 32_768
        for i in 0..<input.count {
            dst[i] = Float(src[i]) * scale
        }
    }

    static func convertReference(_ input: [Int16]) -> [Float] {
        input.map { Float($0) / 32_768 }
    }

    // MARK: Block gate statistics

    /// Lane reductions by halving, with selects: the library's `max()` checks NaN lane by lane.
    @inline(__always)
    static func horizontalMax(_ v: Vector) -> Float {
        var a = v.lowHalf
        a.replace(with: v.highHalf, where: v.highHalf .> a)
        var b = a.lowHalf
        b.replace(with: a.highHalf, where: a.highHalf .> b)
        var c = b.lowHalf
        c.replace(with: b.highHalf, where: b.highHalf .> c)
        return c[1] > c[0] ? c[1] : c[0]
    }

    @inline(__always)
    static func horizontalSum(_ v: Vector) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c[0] + c[1]
    }

    /// Sum (of the samples) and sum of squares about `centre`: what the gate needs per block.
    public struct BlockMoments: Equatable, Sendable {
        public var sum: Float
        public var sumOfSquares: Float
    }

    public static func blockMoments(_ x: UnsafeBufferPointer<Float>, centre: Float) -> BlockMoments {
        guard let base = x.baseAddress else { return BlockMoments(sum: 0, sumOfSquares: 0) }
        let n = x.count
        let c = Vector(repeating: centre)
        var s = Vector.zero, q = Vector.zero
        var i = 0
        while i + lanes <= n {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: Vector.self) - c
            s += v
            q += v * v
            i += lanes
        }
        var sum = horizontalSum(s), squares = horizontalSum(q)
        while i < n {
            let v = base[i] - centre
            sum += v
            squares += v * v
            i += 1
        }
        return BlockMoments(sum: sum + centre * Float(n), sumOfSquares: squares)
    }

    /// `blockMoments` as a plain loop (the tests' reference).
    static func blockMomentsReference(_ x: [Float], centre: Float) -> BlockMoments {
        var sum: Float = 0, squares: Float = 0
        for v in x {
            sum += v
            squares += (v - centre) * (v - centre)
        }
        return BlockMoments(sum: sum, sumOfSquares: squares)
    }

    // MARK: Box filter (moving average), the building block of smoothing and baseline removal

    /// `output[i]` = mean of `input[i - half ... i + half]` (clamped at the ends). O(n) whatever
    /// the width: one sequential pass builds a prefix sum in Double (long windows do not drift),
    /// then the window sums are differences of it, vectorised. `prefix` needs `input.count + 1`
    /// elements. `output` may be `input`.
    public static func movingAverage(
        _ input: UnsafeBufferPointer<Float>, half: Int, into output: UnsafeMutableBufferPointer<Float>,
        prefix: UnsafeMutableBufferPointer<Double>
    ) {
        let n = input.count
        precondition(output.count >= n && prefix.count > n)
        guard n > 0 else { return }
        if half <= 0 {
            if UnsafePointer(output.baseAddress) != input.baseAddress {
                for i in 0..<n { output[i] = input[i] }
            }
            return
        }
        var running = 0.0
        prefix[0] = 0
        for i in 0..<n {
            running += Double(input[i])
            prefix[i + 1] = running
        }
        // Edges: the window is clamped, so its length varies.
        let lead = min(n, half)
        let tailStart = max(lead, n - half)
        for i in 0..<lead { output[i] = Float((prefix[min(n, i + half + 1)] - prefix[0]) / Double(min(n, i + half + 1))) }
        for i in tailStart..<n {
            let lo = max(0, i - half)
            output[i] = Float((prefix[n] - prefix[lo]) / Double(n - lo))
        }
        // Interior: a constant window.
        guard lead < tailStart, let p = prefix.baseAddress, let o = output.baseAddress else { return }
        let width = 2 * half + 1
        let inverse = SIMD8<Double>(repeating: 1 / Double(width))
        var i = lead
        while i + 8 <= tailStart {
            let upper = UnsafeRawPointer(p + i + half + 1).loadUnaligned(as: SIMD8<Double>.self)
            let lower = UnsafeRawPointer(p + i - half).loadUnaligned(as: SIMD8<Double>.self)
            let mean = SIMD8<Float>((upper - lower) * inverse)
            UnsafeMutableRawPointer(o + i).storeBytes(of: mean, as: SIMD8<Float>.self)
            i += 8
        }
        while i < tailStart {
            o[i] = Float((p[i + half + 1] - p[i - half]) / Double(width))
            i += 1
        }
    }

    /// A band-pass from one prefix sum: the mean over `i ± smoothHalf` minus the mean over
    /// `i ± baselineHalf` (windows clamped at the ends). Smooths the noise and removes the
    /// baseline in one sequential pass and one vectorised one. `prefix` needs `count + 1`.
    public static func bandPass(
        _ input: UnsafeBufferPointer<Float>, smoothHalf: Int, baselineHalf: Int,
        into output: UnsafeMutableBufferPointer<Float>, prefix: UnsafeMutableBufferPointer<Double>
    ) {
        let n = input.count
        precondition(prefix.count > n)
        guard n > 0 else { return }
        var running = 0.0
        prefix[0] = 0
        for i in 0..<n {
            running += Double(input[i])
            prefix[i + 1] = running
        }
        bandPass(prefixed: prefix, count: n, smoothHalf: smoothHalf, baselineHalf: baselineHalf, into: output)
    }

    /// The band-pass of a signal whose prefix sum (`prefix[0] = 0`, `prefix[i + 1]` = sum of the
    /// first `i + 1` samples) is already at hand. Adding a constant to the signal changes nothing.
    public static func bandPass(
        prefixed prefix: UnsafeMutableBufferPointer<Double>, count n: Int, smoothHalf: Int, baselineHalf: Int,
        into output: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(output.count >= n && prefix.count > n && baselineHalf >= smoothHalf && smoothHalf >= 0)
        guard n > 0, let p = prefix.baseAddress, let o = output.baseAddress else { return }
        @inline(__always) func window(_ i: Int, _ h: Int) -> Double {
            let lo = max(0, i - h), hi = min(n - 1, i + h)
            return (p[hi + 1] - p[lo]) / Double(hi - lo + 1)
        }
        let lead = min(n, baselineHalf)
        let tailStart = max(lead, n - baselineHalf)
        for i in 0..<lead { o[i] = Float(window(i, smoothHalf) - window(i, baselineHalf)) }
        for i in tailStart..<n { o[i] = Float(window(i, smoothHalf) - window(i, baselineHalf)) }
        let a = SIMD8<Double>(repeating: 1 / Double(2 * smoothHalf + 1))
        let b = SIMD8<Double>(repeating: 1 / Double(2 * baselineHalf + 1))
        var i = lead
        while i + 8 <= tailStart {
            let s1 = UnsafeRawPointer(p + i + smoothHalf + 1).loadUnaligned(as: SIMD8<Double>.self)
            let s0 = UnsafeRawPointer(p + i - smoothHalf).loadUnaligned(as: SIMD8<Double>.self)
            let b1 = UnsafeRawPointer(p + i + baselineHalf + 1).loadUnaligned(as: SIMD8<Double>.self)
            let b0 = UnsafeRawPointer(p + i - baselineHalf).loadUnaligned(as: SIMD8<Double>.self)
            let v = SIMD8<Float>((s1 - s0) * a - (b1 - b0) * b)
            UnsafeMutableRawPointer(o + i).storeBytes(of: v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < tailStart {
            o[i] = Float(window(i, smoothHalf) - window(i, baselineHalf))
            i += 1
        }
    }

    static func bandPassReference(_ input: [Float], smoothHalf: Int, baselineHalf: Int) -> [Float] {
        let smooth = movingAverageReference(input, half: smoothHalf)
        let base = movingAverageReference(input, half: baselineHalf)
        return zip(smooth, base).map { $0 - $1 }
    }

    static func movingAverageReference(_ input: [Float], half: Int) -> [Float] {
        (0..<input.count).map { i in
            let lo = max(0, i - max(0, half)), hi = min(input.count - 1, i + max(0, half))
            return Float(input[lo...hi].reduce(0.0) { $0 + Double($1) } / Double(hi - lo + 1))
        }
    }

    /// `a[i] - b[i]`, vectorised.
    public static func subtract(
        _ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>, into out: UnsafeMutableBufferPointer<Float>
    ) {
        let n = min(a.count, b.count)
        guard let pa = a.baseAddress, let pb = b.baseAddress, let po = out.baseAddress else { return }
        var i = 0
        while i + lanes <= n {
            let v = UnsafeRawPointer(pa + i).loadUnaligned(as: Vector.self)
                - UnsafeRawPointer(pb + i).loadUnaligned(as: Vector.self)
            UnsafeMutableRawPointer(po + i).storeBytes(of: v, as: Vector.self)
            i += lanes
        }
        while i < n { po[i] = pa[i] - pb[i]; i += 1 }
    }

    // MARK: Whole-segment statistics

    /// The largest |x| of each `block`-sample block (the last one may be shorter), appended to
    /// `out` after clearing it.
    public static func blockPeaks(_ x: UnsafeBufferPointer<Float>, block: Int, into out: inout [Float]) {
        out.removeAll(keepingCapacity: true)
        guard let base = x.baseAddress, block > 0 else { return }
        var start = 0
        while start < x.count {
            let end = min(x.count, start + block)
            var p = Vector.zero
            var i = start
            while i + lanes <= end {
                let v = UnsafeRawPointer(base + i).loadUnaligned(as: Vector.self)
                let a = v.replacing(with: -v, where: v .< Vector.zero)
                p.replace(with: a, where: a .> p)
                i += lanes
            }
            if i < end && i + lanes <= x.count {
                // The block's last partial vector: a whole load, the lanes past the block zeroed.
                let v = UnsafeRawPointer(base + i).loadUnaligned(as: Vector.self)
                let a = v.replacing(with: -v, where: v .< Vector.zero)
                    .replacing(with: 0, where: laneIndex .>= Vector(repeating: Float(end - i)))
                p.replace(with: a, where: a .> p)
                i = end
            }
            var peak = horizontalMax(p)
            while i < end { peak = max(peak, abs(base[i])); i += 1 }
            out.append(peak)
            start = end
        }
    }

    /// Subtracts `a·cos(w·i) + b·sin(w·i)` from `x[i]`: eight samples at a time, from a phasor
    /// that a Double rotation advances once per eight samples (so the phase stays exact over
    /// any segment length).
    public static func subtractSinusoid(_ x: UnsafeMutableBufferPointer<Float>, w: Double, a: Double, b: Double) {
        guard let base = x.baseAddress else { return }
        var cosLanes = SIMD8<Float>(), sinLanes = SIMD8<Float>()
        for k in 0..<8 {
            cosLanes[k] = Float(cos(w * Double(k)))
            sinLanes[k] = Float(sin(w * Double(k)))
        }
        let (stepC, stepS) = (cos(8 * w), sin(8 * w))
        var c = 1.0, s = 0.0          // cos and sin of w·i at the start of the group
        var i = 0
        while i + 8 <= x.count {
            // a·cos(θ + wk) + b·sin(θ + wk) = (a·c + b·s)·cos(wk) + (b·c − a·s)·sin(wk)
            let u = Float(a * c + b * s), v = Float(b * c - a * s)
            let p = UnsafeMutableRawPointer(base + i)
            let value = p.loadUnaligned(as: SIMD8<Float>.self) - (u * cosLanes + v * sinLanes)
            p.storeBytes(of: value, as: SIMD8<Float>.self)
            let nc = c * stepC - s * stepS
            s = s * stepC + c * stepS
            c = nc
            i += 8
        }
        while i < x.count {
            let k = Double(i % 8)
            let (ck, sk) = (cos(w * k), sin(w * k))
            base[i] -= Float(a * (c * ck - s * sk) + b * (s * ck + c * sk))
            i += 1
        }
    }

    static func subtractSinusoidReference(_ x: [Float], w: Double, a: Double, b: Double) -> [Float] {
        x.enumerated().map { i, v in v - Float(a * cos(w * Double(i)) + b * sin(w * Double(i))) }
    }

    /// The sum, largest and smallest sample of each whole `block`-sample block (into `sums`,
    /// `maxima`, `minima`), and the sum of all of `x`. Eight lanes, three accumulators, so they
    /// stay in registers; a block's last partial vector is loaded whole and masked.
    public static func blockExtremes(
        _ x: UnsafeBufferPointer<Float>, block: Int, sums: UnsafeMutablePointer<Double>,
        maxima: UnsafeMutablePointer<Float>, minima: UnsafeMutablePointer<Float>
    ) -> Double {
        precondition(block > 0)
        guard let base = x.baseAddress else { return 0 }
        typealias V = SIMD8<Float>
        let index = V(0, 1, 2, 3, 4, 5, 6, 7)
        let blocks = x.count / block
        var total = 0.0
        var start = 0
        for b in 0..<blocks {
            let end = start + block
            var acc = V.zero
            var hi = V(repeating: -.infinity), lo = V(repeating: .infinity)
            var i = start
            while i + 8 <= end {
                let v = UnsafeRawPointer(base + i).loadUnaligned(as: V.self)
                acc += v
                hi.replace(with: v, where: v .> hi)
                lo.replace(with: v, where: v .< lo)
                i += 8
            }
            if i < end && i + 8 <= x.count {
                let v = UnsafeRawPointer(base + i).loadUnaligned(as: V.self)
                let inside = index .< V(repeating: Float(end - i))
                acc += v.replacing(with: 0, where: .!inside)
                hi.replace(with: v, where: (v .> hi) .& inside)
                lo.replace(with: v, where: (v .< lo) .& inside)
                i = end
            }
            // Horizontal: halves folded with compare-and-select.
            var h4 = hi.lowHalf, l4 = lo.lowHalf
            h4.replace(with: hi.highHalf, where: hi.highHalf .> h4)
            l4.replace(with: lo.highHalf, where: lo.highHalf .< l4)
            var blockMax = max(max(h4[0], h4[1]), max(h4[2], h4[3]))
            var blockMin = min(min(l4[0], l4[1]), min(l4[2], l4[3]))
            let a4 = acc.lowHalf + acc.highHalf
            var sum = (a4[0] + a4[1]) + (a4[2] + a4[3])
            while i < end {
                let v = base[i]
                sum += v
                blockMax = max(blockMax, v)
                blockMin = min(blockMin, v)
                i += 1
            }
            sums[b] = Double(sum)
            maxima[b] = blockMax
            minima[b] = blockMin
            total += Double(sum)
            start = end
        }
        for i in start..<x.count { total += Double(base[i]) }
        return total
    }

    static func blockExtremesReference(_ x: [Float], block: Int) -> (sums: [Double], maxima: [Float], minima: [Float], total: Double) {
        let starts = Array(stride(from: 0, to: x.count / block * block, by: block))
        return (starts.map { x[$0..<($0 + block)].reduce(0.0) { $0 + Double($1) } },
                starts.map { x[$0..<($0 + block)].max()! }, starts.map { x[$0..<($0 + block)].min()! },
                x.reduce(0.0) { $0 + Double($1) })
    }

    /// Σ x[b]·cos(θ0 + b·step) and Σ x[b]·sin(θ0 + b·step): four terms at a time, the phasor
    /// advanced by a Double rotation.
    public static func correlate(_ x: UnsafeBufferPointer<Double>, step: Double, phase: Double) -> (cos: Double, sin: Double) {
        guard let base = x.baseAddress else { return (0, 0) }
        var c = SIMD4<Double>(), s = SIMD4<Double>()
        for k in 0..<4 {
            c[k] = cos(phase + step * Double(k))
            s[k] = sin(phase + step * Double(k))
        }
        let rc = SIMD4<Double>(repeating: cos(4 * step)), rs = SIMD4<Double>(repeating: sin(4 * step))
        var ac = SIMD4<Double>.zero, asn = SIMD4<Double>.zero
        var i = 0
        while i + 4 <= x.count {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD4<Double>.self)
            ac += v * c
            asn += v * s
            let nc = c * rc - s * rs
            s = s * rc + c * rs
            c = nc
            i += 4
        }
        var sumC = ac.sum(), sumS = asn.sum()
        var k = 0
        while i < x.count {
            // c and s hold the phasors of terms i, i+1, …: take lane k.
            sumC += base[i] * c[k]
            sumS += base[i] * s[k]
            i += 1
            k += 1
        }
        return (sumC, sumS)
    }

    static func correlateReference(_ x: [Double], step: Double, phase: Double) -> (cos: Double, sin: Double) {
        var c = 0.0, s = 0.0
        for (b, v) in x.enumerated() {
            c += v * cos(phase + step * Double(b))
            s += v * sin(phase + step * Double(b))
        }
        return (c, s)
    }

    /// The sum of `x`, sixteen lanes at a time.
    public static func sum(_ x: UnsafeBufferPointer<Float>) -> Float {
        guard let base = x.baseAddress else { return 0 }
        var acc = Vector.zero
        var i = 0
        while i + lanes <= x.count {
            acc += UnsafeRawPointer(base + i).loadUnaligned(as: Vector.self)
            i += lanes
        }
        var total = horizontalSum(acc)
        while i < x.count { total += base[i]; i += 1 }
        return total
    }

    static func blockPeaksReference(_ x: [Float], block: Int) -> [Float] {
        stride(from: 0, to: x.count, by: block).map { start in
            x[start..<min(x.count, start + block)].map { abs($0) }.max() ?? 0
        }
    }

    // MARK: Peak search

    /// Indices `i` (1 ≤ i < n-1) where `x[i]` is a local maximum above `threshold` or a local
    /// minimum below `-threshold`: x[i] > x[i-1] and x[i] ≥ x[i+1] (or the mirror for minima).
    /// The SIMD pass tests 16 samples at once and only visits lanes that hit.
    public static func localExtrema(
        _ x: UnsafeBufferPointer<Float>, threshold: Float, into out: inout [Int32]
    ) {
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: repeatElement(0, count: x.count))
        let found = out.withUnsafeMutableBufferPointer { localExtrema(x, threshold: threshold, writingTo: $0.baseAddress!) }
        out.removeLast(x.count - found)
    }

    /// The indices of the local extrema of `x` beyond ±`threshold`, written to `out` (room for
    /// `x.count`); returns how many.
    public static func localExtrema(
        _ x: UnsafeBufferPointer<Float>, threshold: Float, writingTo o: UnsafeMutablePointer<Int32>
    ) -> Int {
        let n = x.count
        guard n >= 3, let base = x.baseAddress else { return 0 }
        var count = 0
        let tPos = Vector(repeating: threshold)
        let tNeg = Vector(repeating: -threshold)
        var laneBits = SIMD16<UInt32>.zero
        for lane in 0..<lanes { laneBits[lane] = 1 << UInt32(lane) }
        var i = 1
        while i + lanes + 1 <= n {
            let previous = UnsafeRawPointer(base + i - 1).loadUnaligned(as: Vector.self)
            let current = UnsafeRawPointer(base + i).loadUnaligned(as: Vector.self)
            let next = UnsafeRawPointer(base + i + 1).loadUnaligned(as: Vector.self)
            let isMax = (current .> previous) .& (current .>= next) .& (current .> tPos)
            let isMin = (current .< previous) .& (current .<= next) .& (current .< tNeg)
            let hits = isMax .| isMin
            if any(hits) {
                // The hits as a bit mask, then one store per set bit.
                var word = SIMD16<UInt32>.zero.replacing(with: laneBits, where: hits).wrappedSum()
                while word != 0 {
                    o[count] = Int32(truncatingIfNeeded: i &+ word.trailingZeroBitCount)
                    count &+= 1
                    word &= word &- 1
                }
            }
            i += lanes
        }
        while i < n - 1 {
            let p = base[i - 1], c = base[i], q = base[i + 1]
            if (c > p && c >= q && c > threshold) || (c < p && c <= q && c < -threshold) {
                o[count] = Int32(i)
                count += 1
            }
            i += 1
        }
        return count
    }

    static func localExtremaReference(_ x: [Float], threshold: Float) -> [Int32] {
        guard x.count >= 3 else { return [] }
        var out: [Int32] = []
        for i in 1..<(x.count - 1) {
            let p = x[i - 1], c = x[i], q = x[i + 1]
            if (c > p && c >= q && c > threshold) || (c < p && c <= q && c < -threshold) { out.append(Int32(i)) }
        }
        return out
    }
}

/// The k-th smallest element (0-based) by quickselect: O(n) on average, reorders `values`.
public func selectKth<T: Comparable>(_ values: inout [T], _ k: Int) -> T {
    precondition(!values.isEmpty && k >= 0 && k < values.count)
    return values.withUnsafeMutableBufferPointer { selectKth($0, k) }
}

/// The k-th smallest element (0-based) of `values`, reordering them (Hoare partition around
/// the middle element).
public func selectKth<T: Comparable>(_ values: UnsafeMutableBufferPointer<T>, _ k: Int) -> T {
    precondition(!values.isEmpty && k >= 0 && k < values.count)
    var lo = 0, hi = values.count - 1
    while lo < hi {
        let pivot = values[(lo + hi) / 2]
        var i = lo, j = hi
        while i <= j {
            while values[i] < pivot { i += 1 }
            while pivot < values[j] { j -= 1 }
            if i <= j {
                values.swapAt(i, j)
                i += 1
                j -= 1
            }
        }
        if k <= j { hi = j } else if k >= i { lo = i } else { return values[k] }
    }
    return values[k]
}

/// The k-th smallest by sorting: the reference `selectKth` is tested against.
public func selectKthReference<T: Comparable>(_ values: [T], _ k: Int) -> T { values.sorted()[k] }
