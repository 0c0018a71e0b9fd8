import SwipeDecoder
#if canImport(Glibc)
import Glibc
#endif

/// Issue 22, item 6: no input may make the analysis of one segment take longer than the audio
/// can wait. A segment is at most 4 s (`maximumSwipe`); each input below fills one, and the
/// analysis of it alone (`analyzeSegment`) is timed, five times each.
func worstCaseReport() {
    print("## Worst-case analysis time of one 4 s segment (target ≤ 50 ms)\n")
    print("| input | rate | median ms | max ms | sequence detector alone: median ms | max ms | cells |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    var worst = 0.0, worstSequence = 0.0
    for rate in [44_100, 96_000] {
        let n = 4 * rate
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func noise() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        var random = [Float](repeating: 0, count: n)
        for i in 0..<n { random[i] = 0.3 * noise() }
        // A pulse of alternating sign every `every` samples: the densest "transitions" there are.
        func pulses(every: Int) -> [Float] {
            (0..<n).map { i in i % every == 0 ? ((i / every) % 2 == 0 ? 0.8 : -0.8) : 0.01 * noise() }
        }
        // Random F2F-like bits at a steady fast clock: looks like a swipe to every stage.
        var bits = [Float](repeating: 0, count: n)
        var sign: Float = 1, next = 0, halfCell = 3
        while next < n {
            bits[next] = sign * 0.7
            sign = -sign
            next += (noise() > 0 ? halfCell : 2 * halfCell)
            halfCell = 3 + Int(abs(noise()) * 2)
        }
        let inputs: [(String, [Float])] = [
            ("white noise, -10 dBFS", random),
            ("a pulse every 2 samples", pulses(every: 2)),
            ("a pulse every 7 samples", pulses(every: 7)),
            ("random half-cells of 3-5 samples", bits),
            ("square wave 3 kHz", (0..<n).map { i in (i * 6_000 / rate) % 2 == 0 ? 0.5 : -0.5 }),
            ("full-scale clipped noise", random.map { max(-1, min(1, $0 * 8)) }),
        ]
        for (name, x) in inputs {
            let decoder = benchDecoder(rate)
            let times = fiveRuns { _ = decoder.analyzeSegment(x) }
            worst = max(worst, times.last!)
            // Issue 24: the sequence detector alone on the same segment (it runs only when every
            // setting failed on transitions closer than 6 samples, but is timed on everything).
            var cells = 0
            let sequence = fiveRuns { cells = SwipeDecoder.sequenceCells(x) }
            worstSequence = max(worstSequence, sequence.last!)
            print("| \(name) | \(rate) | \(fmt(times[2], 1)) | \(fmt(times.last!, 1)) | \(fmt(sequence[2], 1)) | \(fmt(sequence.last!, 1)) | \(cells) |")
        }
    }
    print("\nThe longest: \(fmt(worst, 1)) ms (\(worst <= 50 ? "within" : "OVER") the 50 ms target); the sequence detector's")
    print("longest: \(fmt(worstSequence, 1)) ms (\(worstSequence <= 100 ? "within" : "OVER") its 100 ms target).\n")
}

/// Five runs of `body`, their times in milliseconds, sorted (the median is [2], the worst last).
private func fiveRuns(_ body: () -> Void) -> [Double] {
    var times: [Double] = []
    for _ in 0..<5 {
        let t0 = monotonicSeconds()
        body()
        times.append((monotonicSeconds() - t0) * 1_000)
    }
    return times.sorted()
}
