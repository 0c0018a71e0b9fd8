import SwipeSynth
import SwipeDecoder
import Magstripe
import CMallocCounter
#if canImport(Glibc)
import Glibc
#endif

/// CPU seconds of the calling thread.
func threadCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func median(_ x: [Double]) -> Double {
    precondition(!x.isEmpty)
    let s = x.sorted()
    return s[s.count / 2]
}

/// Swipes of every format, alternating direction, constant speeds drawn from `speeds` (mm/s),
/// each with `silence` seconds before and after; with the time of each one's last transition.
func mixedSwipes(rate: Int, count: Int, seed: UInt64, speeds: ClosedRange<Double>, silence: Double)
    -> (samples: [Float], ends: [Double]) {
    var samples: [Float] = []
    var ends: [Double] = []
    var rng = SynthRandom(seed: seed)
    for k in 0..<count {
        let format = TrackFormat.allCases[k % 3]
        let text = GridCards.texts(format)[k % GridCards.texts(format).count]
        var audio = AudioPath(sampleRate: rate)
        audio.snr = 30
        audio.leadingSilence = silence
        audio.trailingSilence = silence
        let speed = speeds.lowerBound + (speeds.upperBound - speeds.lowerBound) * rng.uniform()
        let scenario = SwipeScenario(tracks: [try! StripeTrack(text: text, format: format)],
                                     motion: Motion(speed: .constant(speed), direction: k % 2 == 0 ? .forward : .reverse),
                                     audio: audio, seed: rng.next())
        let swipe = SwipeSynthesizer.render(scenario)
        ends.append(Double(samples.count) / Double(rate) + swipe.swipeEnd)
        samples += swipe.channels[0]
    }
    return (samples, ends)
}

/// Audio with a stream of swipes back to back: every format, both directions, a spread of speeds.
func swipeStream(rate: Int, count: Int) -> (samples: [Int16], swipes: Int) {
    let (samples, _) = mixedSwipes(rate: rate, count: count, seed: 77, speeds: 150...1_000, silence: 0.03)
    return (samples.map { Int16(max(-32_768, min(32_767, ($0 * 32_768).rounded()))) }, count)
}

func idleStream(rate: Int, seconds: Double) -> [Int16] {
    var rng = SynthRandom(seed: 5)
    return (0..<Int(Double(rate) * seconds)).map { _ in Int16(max(-32_768, min(32_767, (rng.gaussian() * 30).rounded()))) }
}

/// Pushes `samples` in `period`-sized chunks; returns CPU seconds, swipes decoded, and the
/// allocation counts of chunks that completed no swipe (steady state) and of those that did.
func run(_ samples: [Int16], rate: Int, period: Int, decoder given: SwipeDecoder? = nil) -> (cpu: Double, swipes: Int, steadyAllocations: Int, steadyChunks: Int, swipeAllocations: Int, segments: Int) {
    // A decoder that has already seen a swipe has sized its work buffers: steady state.
    let decoder = given ?? benchDecoder(rate)
    decoder.reset()
    var swipes = 0
    var steadyAllocations = 0, steadyChunks = 0, swipeAllocations = 0, segments = 0
    let start = threadCPUTime()
    samples.withUnsafeBufferPointer { all in
        var offset = 0
        while offset < all.count {
            let n = min(period, all.count - offset)
            let before = posmini_allocation_count()
            let closed = decoder.segmentsAnalyzed
            let results = decoder.push(UnsafeBufferPointer(rebasing: all[offset..<(offset + n)]))
            let used = posmini_allocation_count() - before
            if decoder.segmentsAnalyzed == closed {
                steadyAllocations += used
                steadyChunks += 1
            } else {
                swipeAllocations += used
                segments += decoder.segmentsAnalyzed - closed
            }
            swipes += results.count
            offset += n
        }
    }
    swipes += decoder.finish().count
    return (threadCPUTime() - start, swipes, steadyAllocations, steadyChunks, swipeAllocations, segments)
}

/// The cheapest pass over the audio in the same periods: conversion and a sum. CPU seconds.
func baseline(_ samples: [Int16], period: Int) -> Double {
    var buffer = [Float](repeating: 0, count: period)
    var total: Float = 0
    let start = threadCPUTime()
    samples.withUnsafeBufferPointer { all in
        buffer.withUnsafeMutableBufferPointer { out in
            var offset = 0
            while offset < all.count {
                let n = min(period, all.count - offset)
                Kernels.convert(UnsafeBufferPointer(rebasing: all[offset..<(offset + n)]), into: out)
                total += Kernels.sum(UnsafeBufferPointer(rebasing: out[0..<n]))
                offset += n
            }
        }
    }
    let cpu = threadCPUTime() - start
    if total.isNaN { print("") }      // keeps the loop from being optimised away
    return cpu
}

func throughputReport() {
    let rate = 44_100
    let period = 441                     // 10 ms, an ALSA period
    let idle = idleStream(rate: rate, seconds: 60)
    let (stream, made) = swipeStream(rate: rate, count: 60)
    // Warm up (buffers sized, caches filled), then five timed runs each; medians.
    let decoder = benchDecoder(rate)
    _ = run(idle, rate: rate, period: period, decoder: decoder)
    _ = run(stream, rate: rate, period: period, decoder: decoder)
    var idleTimes: [Double] = [], swipeTimes: [Double] = [], baselineTimes: [Double] = []
    var idleResult = run(idle, rate: rate, period: period, decoder: decoder)
    var swipeResult = run(stream, rate: rate, period: period, decoder: decoder)
    for _ in 0..<9 {
        baselineTimes.append(baseline(stream, period: period))
        idleResult = run(idle, rate: rate, period: period, decoder: decoder)
        idleTimes.append(idleResult.cpu)
        swipeResult = run(stream, rate: rate, period: period, decoder: decoder)
        swipeTimes.append(swipeResult.cpu)
    }
    let idleRate = Double(idle.count) / median(idleTimes)
    let swipeRate = Double(stream.count) / median(swipeTimes)
    print("## Throughput and allocations (one thread, 44.1 kHz Int16, 10 ms periods; medians of 9 runs)\n")
    print("| audio | samples per CPU second | × real time |")
    print("| --- | ---: | ---: |")
    print("| idle audio (60 s of noise at -61 dBFS) | \(fmt(idleRate / 1e6, 1)) M | \(Int(idleRate / Double(rate))) |")
    print("| swipe audio (\(made) swipes back to back, \(fmt(Double(stream.count) / Double(rate), 1)) s) | \(fmt(swipeRate / 1e6, 1)) M | \(Int(swipeRate / Double(rate))) |")
    let baselineRate = Double(stream.count) / median(baselineTimes)
    print("| baseline: Int16 → Float and a sum, the same periods (the machine's pace) | \(fmt(baselineRate / 1e6, 1)) M | \(Int(baselineRate / Double(rate))) |")
    print("\nAgainst the baseline, measured alternately in this process: idle audio \(fmt(idleRate / baselineRate, 3)), "
        + "swipe audio \(fmt(swipeRate / baselineRate, 4)).")
    print("\nSwipes decoded per run: \(swipeResult.swipes) of \(made).\n")
    print("| allocations (malloc, calloc, realloc, aligned) | chunks | allocations | per chunk |")
    print("| --- | ---: | ---: | ---: |")
    print("| idle chunks | \(idleResult.steadyChunks) | \(idleResult.steadyAllocations) | \(fmt(Double(idleResult.steadyAllocations) / Double(max(1, idleResult.steadyChunks)), 3)) |")
    print("| swipe-audio chunks in which no segment ends | \(swipeResult.steadyChunks) | \(swipeResult.steadyAllocations) | \(fmt(Double(swipeResult.steadyAllocations) / Double(max(1, swipeResult.steadyChunks)), 3)) |")
    print("| chunks that end a segment (its analysis and result) | \(swipeResult.segments) | \(swipeResult.swipeAllocations) | \(fmt(Double(swipeResult.swipeAllocations) / Double(max(1, swipeResult.segments)), 1)) per segment |")
}
