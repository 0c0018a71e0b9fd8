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
    // A second model of speech, built differently from the one above: a voice. Glottal pulses
    // (a pitch of 90-220 Hz that drifts, with 2 % jitter) ring three formant resonators (vowels
    // changing every 0.15 s), under a syllable envelope of 4-6 syllables per second with pauses.
    streams.append(("voiced speech (pulses through formants)", voicedSpeech(count: n, rate: rate, rng: &rng)))
    // Handling the cable: a crackle of single impulses at random times (about 15 per second
    // in clusters 10 ms apart, between them pauses of 0.3 s), each a decaying pulse.
    streams.append(("cable crackle (random impulses)", crackle(count: n, rate: rate, rng: &rng)))
    streams.append(("tones 440 Hz to 4 kHz, switched every 0.3 s", (0..<n).map { i in
        let f = [440.0, 1_000, 2_500, 4_000][(i / (rate * 3 / 10)) % 4]
        return Float(0.2 * sin(2 * .pi * f * Double(i) / Double(rate)))
    }))
    print("## No card: \(Int(secondsEach)) s of each, through the whole decoder\n")
    print("| stream | swipes reported | reported as | dropped as noise bursts | ok reads |")
    print("| --- | ---: | --- | ---: | ---: |")
    var totalOK = 0
    for (name, x) in streams {
        let decoder = benchDecoder(rate)
        var reported = 0, ok = 0
        var reasons: [String: Int] = [:]
        func count(_ swipes: [Swipe]) {
            for s in swipes {
                reported += 1
                ok += s.readTracks.count
                reasons[s.problem.map { "\($0)" } ?? "read", default: 0] += 1
            }
        }
        x.withUnsafeBufferPointer { all in
            var offset = 0
            while offset < all.count {
                let m = min(441, all.count - offset)
                count(decoder.push(UnsafeBufferPointer(rebasing: all[offset..<(offset + m)])))
                offset += m
            }
        }
        count(decoder.finish())
        let reportedAs = reasons.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        totalOK += ok
        print("| \(name) | \(reported) | \(reportedAs) | \(decoder.noiseBursts) | \(ok) |")
    }
    print("| **all** | | | | **\(totalOK)** |\n")
}

/// Glottal pulses through three formant resonators, under a syllable envelope.
private func voicedSpeech(count n: Int, rate: Int, rng: inout SynthRandom) -> [Float] {
    let fs = Double(rate)
    let vowels: [[Double]] = [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]]
    var out = [Float](repeating: 0, count: n)
    // Resonator state (two-pole, 80-120 Hz bandwidths).
    var y1 = [0.0, 0.0, 0.0], y2 = [0.0, 0.0, 0.0]
    var nextPulse = 0.0, pitch = 140.0
    var vowel = vowels[0]
    var syllablePhase = 0.0, syllableRate = 5.0, pause = 0
    for i in 0..<n {
        if i % (rate * 15 / 100) == 0 { vowel = vowels[Int(rng.uniform() * Double(vowels.count)) % vowels.count] }
        pitch = min(220, max(90, pitch + 0.02 * rng.gaussian()))
        var excitation = 0.0
        if Double(i) >= nextPulse {
            excitation = 1
            nextPulse += fs / pitch * (1 + 0.02 * rng.gaussian())
        }
        excitation += 0.02 * rng.gaussian()                       // breath
        if pause > 0 {
            pause -= 1
        } else {
            syllablePhase += syllableRate / fs
            if syllablePhase >= 1 {
                syllablePhase -= 1
                syllableRate = 4 + 2 * rng.uniform()
                if rng.uniform() < 0.2 { pause = Int(fs * (0.2 + 0.4 * rng.uniform())) }
            }
        }
        let envelope = pause > 0 ? 0 : pow(sin(.pi * syllablePhase), 2)
        var sum = 0.0
        for k in 0..<3 {
            let bandwidth = 80.0 + 20 * Double(k)
            let r = exp(-.pi * bandwidth / fs)
            let a1 = 2 * r * cos(2 * .pi * vowel[k] / fs), a2 = -r * r
            let y = excitation + a1 * y1[k] + a2 * y2[k]
            y2[k] = y1[k]; y1[k] = y
            sum += y / Double(k + 1)
        }
        out[i] = Float(envelope * sum)
    }
    // Loud speech into the jack: peaks at -10 dBFS, over the converter's noise.
    let peak = out.reduce(0) { max($0, abs($1)) }
    return out.map { $0 * 0.3 / max(peak, 1e-9) + Float(0.0005 * rng.gaussian()) }
}

/// Random impulses in clusters, each a short decaying pulse of random sign and height.
private func crackle(count n: Int, rate: Int, rng: inout SynthRandom) -> [Float] {
    var out = (0..<n).map { _ in Float(0.0005 * rng.gaussian()) }
    var t = 0.0
    let fs = Double(rate)
    while true {
        // Clusters: most gaps short, some long (a hand moving the cable, then still).
        let mean = rng.uniform() < 0.8 ? 0.01 : 0.3
        t += -mean * log(max(1e-9, rng.uniform()))
        let start = Int(t * fs)
        guard start < n else { break }
        let height = (rng.uniform() < 0.5 ? -1.0 : 1.0) * 0.5 * pow(rng.uniform(), 2)
        let decay = 1 + 6 * rng.uniform()
        for k in 0..<40 where start + k < n { out[start + k] += Float(height * exp(-Double(k) / decay)) }
    }
    return out
}
