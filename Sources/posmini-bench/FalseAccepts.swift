import Magstripe
import SwipeSynth
import SwipeDecoder
#if canImport(Glibc)
import Glibc
#endif

/// The false-accept trial kinds: each gives the decoder something that must never come back as
/// an ok read of other text.
enum TrialKind: Int, CaseIterable, CustomStringConvertible {
    case clockSlip, bitErrors, burst, noise, tones, randomF2F, fastDamaged

    var description: String {
        switch self {
        case .clockSlip: "swipe with a bit inserted or dropped (clock slip)"
        case .bitErrors: "swipe with 2-4 bit errors"
        case .burst: "swipe with a burst of 3-12 random bits"
        case .noise: "noise segment (white, coloured, bursts)"
        case .tones: "tones, chirps, square waves"
        case .randomF2F: "F2F pulse train of random bits"
        case .fastDamaged: "swipe at 1.2-2 samples per half-cell, SNR 12-40 dB, with a clock slip, bit errors or a burst"
        }
    }
}

struct TrialResult {
    var kind: TrialKind
    var falseAccepts = 0
    var trueReads = 0
    var trials = 0
}

/// Runs trials `range` (deterministic per index) and counts false accepts per kind.
func falseAcceptTrials(_ range: Range<Int>, seed: UInt64) -> [TrialKind: TrialResult] {
    var results: [TrialKind: TrialResult] = [:]
    for kind in TrialKind.allCases { results[kind] = TrialResult(kind: kind) }
    for k in range {
        var rng = SynthRandom(seed: seed &* 7_919 &+ UInt64(k))
        let kind = TrialKind(rawValue: k % TrialKind.allCases.count)!
        let (samples, rate, acceptable, wholeStream) = makeTrial(kind, rng: &rng)
        let decoder = benchDecoder(rate)
        let swipes: [Swipe]
        if wholeStream {
            swipes = decoder.push(samples) + decoder.finish()
        } else {
            swipes = decoder.analyzeSegment(samples).map { [$0] } ?? []
        }
        results[kind]!.trials += 1
        for swipe in swipes {
            for track in swipe.tracks where track.isOK {
                if let text = track.text, acceptable.contains(text.revealed()) { results[kind]!.trueReads += 1 } else {
                    results[kind]!.falseAccepts += 1
                    print("FALSE ACCEPT trial \(k) (\(kind)): candidate \(swipe.quality.candidate ?? -1), corrections \(track.corrections)")
                }
            }
        }
    }
    return results
}

/// Each trial's audio, and the texts a correct reader may return: the card's own text, and for a
/// damaged stripe whatever valid track the damage left on it (no reader can tell a stripe that is
/// damaged into another valid track from one written that way).
func makeTrial(_ kind: TrialKind, rng: inout SynthRandom) -> (samples: [Float], rate: Int, acceptable: Set<String>, wholeStream: Bool) {
    func pick<T>(_ a: [T]) -> T { a[Int(rng.uniform() * Double(a.count)) % a.count] }
    let rate = pick([22_050, 44_100, 48_000])
    switch kind {
    case .clockSlip, .bitErrors, .burst, .fastDamaged:
        let format: TrackFormat = pick([.track1, .track2, .track3])
        let text = pick(GridCards.texts(format))
        var track = try! StripeTrack(text: text, format: format)
        let first = track.bits.firstIndex(of: 1)!
        let last = track.bits.lastIndex(of: 1)!
        let at = first + format.characterWidth + Int(rng.uniform() * Double(last - first - format.characterWidth))
        // Issue 24: the regime where transitions crowd within two samples of each other, each of
        // the three damages in turn.
        let damage = kind == .fastDamaged ? [TrialKind.clockSlip, .bitErrors, .burst][Int(rng.uniform() * 3) % 3] : kind
        switch damage {
        case .clockSlip:
            if rng.uniform() < 0.5 { track.bits.insert(UInt8(rng.next() & 1), at: at) } else { track.bits.remove(at: at) }
        case .bitErrors:
            let flips = 2 + Int(rng.uniform() * 3)
            for _ in 0..<flips { track.bits[first + Int(rng.uniform() * Double(last - first + 1))] ^= 1 }
        default:
            let length = 3 + Int(rng.uniform() * 10)
            for i in at..<min(last, at + length) { track.bits[i] = UInt8(rng.next() & 1) }
        }
        var audio = AudioPath(sampleRate: rate)
        audio.snr = 18 + 22 * rng.uniform()
        audio.level = -20
        audio.leadingSilence = 0.05
        audio.trailingSilence = 0.05
        track.jitter = 0.04 * rng.uniform()
        let profile: SpeedProfile
        if kind == .fastDamaged {
            audio.snr = 12 + 28 * rng.uniform()
            let fastest = Double(rate) / (2 * format.bitsPerMillimetre * (1.2 + 0.8 * rng.uniform()))
            profile = rng.uniform() < 0.5 ? .constant(fastest) : .accelerating(from: fastest / (1 + rng.uniform()), to: fastest)
        } else {
            let maxSpeed = format == .track2 ? 1_500.0 : 1_000
            let speed = 100 + (maxSpeed - 100) * rng.uniform()
            profile = rng.uniform() < 0.5 ? .constant(speed) : .jerky(mean: speed, ratio: 1 + 2 * rng.uniform(), changes: 4)
        }
        let direction: SwipeDirection = rng.uniform() < 0.5 ? .forward : .reverse
        let swipe = SwipeSynthesizer.render(SwipeScenario(tracks: [track], motion: Motion(speed: profile, direction: direction),
                                                          audio: audio, seed: rng.next()))
        var acceptable: Set<String> = [text]
        let readFormat: TrackFormat = format == .track1 ? .track1 : .track3
        if case .success(let onStripe) = TrackDecoding.decode(track.bits, format: readFormat) { acceptable.insert(onStripe.text.revealed()) }
        return (swipe.channels[0], rate, acceptable, true)
    case .noise:
        let n = Int(Double(rate) * (0.1 + 0.5 * rng.uniform()))
        var x = [Float](repeating: 0, count: n)
        let smoothing = Float(pick([1.0, 0.5, 0.2, 0.05]))
        var state: Float = 0
        var envelope: Float = 1
        for i in 0..<n {
            if i % 200 == 0 { envelope = Float(0.2 + rng.uniform()) }
            state += smoothing * (Float(rng.gaussian()) - state)
            x[i] = 0.2 * envelope * state
        }
        return (x, rate, [], false)
    case .tones:
        let n = Int(Double(rate) * (0.1 + 0.4 * rng.uniform()))
        let f0 = 50 + 3_000 * rng.uniform()
        let sweep = rng.uniform() < 0.5 ? 0 : 4_000 * rng.uniform()
        let square = rng.uniform() < 0.3
        var phase = 0.0
        let x: [Float] = (0..<n).map { i in
            let t = Double(i) / Double(rate)
            phase += 2 * Double.pi * (f0 + sweep * t) / Double(rate)
            let v = sin(phase)
            return Float(0.3 * (square ? (v > 0 ? 1 : -1) : v) + 0.01 * rng.gaussian())
        }
        return (x, rate, [], false)
    case .randomF2F:
        let format: TrackFormat = pick([.track1, .track2])
        let bits = (0..<(150 + Int(rng.uniform() * 500))).map { _ in UInt8(rng.next() & 1) }
        var audio = AudioPath(sampleRate: rate)
        audio.snr = 20 + 20 * rng.uniform()
        let swipe = SwipeSynthesizer.render(SwipeScenario(tracks: [StripeTrack(bits: bits, format: format)],
                                                          motion: Motion(speed: .constant(200 + 800 * rng.uniform())),
                                                          audio: audio, seed: rng.next()))
        var acceptable: Set<String> = []
        for f in [TrackFormat.track1, .track3] {
            if case .success(let onStripe) = TrackDecoding.decodeEitherDirection(bits, format: f) { acceptable.insert(onStripe.text.revealed()) }
        }
        return (swipe.channels[0], rate, acceptable, true)
    }
}

func falseAcceptReport(trials: Int, seed: UInt64) async {
    let cores = processorCount()
    let started = monotonicSeconds()
    let parts = await inParallel(trials) { falseAcceptTrials($0, seed: seed) }
    print("## False accepts: \(trials) trials\n")
    print("Damaged swipes are synthesized with the damage written on the stripe; a read of whatever valid track the")
    print("damage left there is not a false accept (no reader can tell it apart), any other ok text is.\n")
    print("| trial | trials | false accepts | true reads |")
    print("| --- | ---: | ---: | ---: |")
    var total = TrialResult(kind: .noise)
    for kind in TrialKind.allCases {
        var r = TrialResult(kind: kind)
        for p in parts { if let x = p[kind] { r.trials += x.trials; r.falseAccepts += x.falseAccepts; r.trueReads += x.trueReads } }
        total.trials += r.trials; total.falseAccepts += r.falseAccepts; total.trueReads += r.trueReads
        print("| \(kind) | \(r.trials) | \(r.falseAccepts) | \(r.trueReads) |")
    }
    print("| **all** | \(total.trials) | **\(total.falseAccepts)** | \(total.trueReads) |")
    print("(\(fmt(monotonicSeconds() - started, 1)) s on \(cores) threads)\n")
}

/// One trial with every candidate's read shown (test cards only).
func trialDebug(_ k: Int, seed: UInt64) {
    var rng = SynthRandom(seed: seed &* 7_919 &+ UInt64(k))
    let kind = TrialKind(rawValue: k % TrialKind.allCases.count)!
    let (samples, rate, acceptable, _) = makeTrial(kind, rng: &rng)
    print("trial \(k) (\(kind)); acceptable:", acceptable)
    let decoder = benchDecoder(rate)
    decoder.candidateObserver = { index, read in
        if let t = read.text {
            print("candidate \(index) \(read.status.code) corrections \(read.corrections) corrected-bit confidence \(read.correctedConfidence ?? -1) weak \(read.weakBits) weakest \(read.weakest ?? -1) text \(t)")
        }
    }
    for r in decoder.push(samples) + decoder.finish() {
        for t in r.tracks where t.isOK { print("OK:", t.text ?? "", "candidate", r.quality.candidate ?? -1) }
    }
}
