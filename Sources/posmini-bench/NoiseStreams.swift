import SwipeSynth
import SwipeDecoder
#if canImport(Glibc)
import Glibc
#endif

/// No card at all: long streams of what a reader hears when nobody swipes, through the whole
/// decoder (gate included). Nothing may read; few things should even be reported.
func noiseReport(secondsEach: Double) {
    let rate = 44_100
    let n = Int(Double(rate) * secondsEach)
    var rng = SynthRandom(seed: 404)
    var streams: [(String, [Float])] = []
    for level in [-60.0, -40.0, -20.0] {
        let sigma = pow(10, level / 20)
        streams.append(("white noise at \(Int(level)) dBFS", (0..<n).map { _ in Float(sigma * rng.gaussian()) }))
    }
    var state = 0.0
    streams.append(("red noise (integrated), -30 dBFS", (0..<n).map { _ in
        state = 0.995 * state + 0.03 * rng.gaussian()
        return Float(state * 0.03)
    }))
    streams.append(("mains hum 50 Hz + harmonics, -20 dBFS, with noise", (0..<n).map { i in
        let t = Double(i) / Double(rate)
        return Float(0.1 * sin(2 * .pi * 50 * t) + 0.03 * sin(2 * .pi * 150 * t) + 0.001 * rng.gaussian())
    }))
    streams.append(("clicks (5 per second) in noise", (0..<n).map { i in
        let click = i % (rate / 5) < 8 ? 0.5 * exp(-Double(i % (rate / 5)) / 2) : 0
        return Float(click + 0.001 * rng.gaussian())
    }))
    var smooth = 0.0
    streams.append(("speech-like bursts", (0..<n).map { i in
        let envelope = max(0, sin(2 * .pi * 3.7 * Double(i) / Double(rate)))
        smooth += 0.15 * (rng.gaussian() - smooth)
        return Float(0.3 * envelope * smooth)
    }))
    streams.append(("tones 440 Hz to 4 kHz, switched every 0.3 s", (0..<n).map { i in
        let f = [440.0, 1_000, 2_500, 4_000][(i / (rate * 3 / 10)) % 4]
        return Float(0.2 * sin(2 * .pi * f * Double(i) / Double(rate)))
    }))
    print("## No card: \(Int(secondsEach)) s of each, through the whole decoder\n")
    print("| stream | swipes reported | dropped as noise bursts | ok reads |")
    print("| --- | ---: | ---: | ---: |")
    var totalOK = 0
    for (name, x) in streams {
        let decoder = benchDecoder(rate)
        var reported = 0, ok = 0
        x.withUnsafeBufferPointer { all in
            var offset = 0
            while offset < all.count {
                let m = min(441, all.count - offset)
                for s in decoder.push(UnsafeBufferPointer(rebasing: all[offset..<(offset + m)])) {
                    reported += 1
                    ok += s.readTracks.count
                }
                offset += m
            }
        }
        for s in decoder.finish() { reported += 1; ok += s.readTracks.count }
        totalOK += ok
        print("| \(name) | \(reported) | \(decoder.noiseBursts) | \(ok) |")
    }
    print("| **all** | | | **\(totalOK)** |\n")
}
