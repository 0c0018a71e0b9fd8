import Magstripe
import SwipeSynth
import SwipeDecoder
import ReaderIO
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

// posmini-bench: the decoder's accuracy, false accepts, throughput and allocations, in a
// release build. `swift run -c release posmini-bench` runs every section with the figures the
// issue asks for; the options run one section or a diagnostic.
//
//   --cases N            accuracy grid size (default 10 000: half nominal, half anywhere)
//   --false-accepts N    false-accept trials (default 100 000)
//   --noise-seconds S    length of each no-card stream (default 60)
//   --only SECTION       accuracy | physics | fast | worst-case | reasons | noise | false-accepts | throughput | capture | reply | metrics
//   --ring-samples N     samples per ring stress run (capture section; default 200 M)
//   --seed N             grid and trial seed (default 2026)
//   --nominal            accuracy grid inside the nominal region only
//   --physics-cases N    swipes of the second model's grid (default 3000; `--only physics` runs it alone)
//   --physics-trials N   false-accept trials with its swipes (default 15000)
//   --physics-seed S     its seed (default the reported one; tune on PhysicsGrid.tuningSeed, never on it)
//   --show-failures N    list up to N failed grid cases
// Diagnostics (developer use, test cards only):
//   --inspect K          one grid case with the decoder's trace
//   --margins N          every candidate's passing read over N cases, true against false
//   --recording FILE     bits of a recording forward, reversed and resampled
//   --trial-debug K, --trial-list K,K,...   false-accept trials one by one
//   --physics-inspect K  the second model's case K (tuning seed unless --physics-seed), with the
//                        decoder's trace, trimmed and whole

let args = CommandLine.arguments
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
let seed = option("--seed").flatMap { UInt64($0) } ?? 2026
let cases = option("--cases").flatMap { Int($0) } ?? 10_000
let trials = option("--false-accepts").flatMap { Int($0) } ?? 100_000
let noiseSeconds = option("--noise-seconds").flatMap { Double($0) } ?? 60
let showFailures = option("--show-failures").flatMap { Int($0) } ?? 0
let allNominal = args.contains("--nominal")
let only = option("--only")

if let k = option("--inspect").flatMap({ Int($0) }) {
    var c = gridCase(k, seed: seed, allNominal: allNominal)
    if args.contains("--clean") { c.scenario.audio.snr = nil; c.scenario.audio.hum = nil; c.scenario.audio.clicks = nil }
    inspectCase(c)
    exit(0)
}
if let k = option("--physics-inspect").flatMap({ Int($0) }) {
    physicsInspect(k, seed: option("--physics-seed").flatMap { UInt64($0) } ?? PhysicsGrid.tuningSeed)
    exit(0)
}
if let n = option("--margins").flatMap({ Int($0) }) {
    marginStudy(n, seed: seed)
    exit(0)
}
if let path = option("--recording") {
    recordingReport(path)
    exit(0)
}
if let k = option("--trial-debug").flatMap({ Int($0) }) {
    trialDebug(k, seed: seed)
    exit(0)
}
if let list = option("--trial-list") {
    for k in list.split(separator: ",").compactMap({ Int($0) }) {
        let r = falseAcceptTrials(k..<(k + 1), seed: seed)
        print("trial \(k): \(r.values.reduce(0) { $0 + $1.falseAccepts }) false accepts")
    }
    exit(0)
}
if args.contains("--swipes-only") {
    let (stream, _) = swipeStream(rate: 44_100, count: 60)
    let runs = option("--swipes-only").flatMap { Int($0) } ?? 5
    var rates: [Double] = []
    for _ in 0..<runs { let r = run(stream, rate: 44_100, period: 441); rates.append(Double(stream.count) / r.cpu / 44_100) }
    print("swipe audio: median", Int(median(rates)), "x RT over", runs, "runs; min", Int(rates.min()!), "max", Int(rates.max()!))
    exit(0)
}
if args.contains("--gate-trace") {
    let (stream, _) = swipeStream(rate: 44_100, count: 12)
    let d = benchDecoder(44_100)
    d.trace = { if $0.hasPrefix("gate") || $0.hasPrefix("plain") || args.contains("--all") { print($0) } }
    for r in d.push(stream) + d.finish() { print("swipe", fmt(r.start, 3), fmt(r.end, 3), r.readTracks.count) }
    exit(0)
}
if let path = option("--soak-wav") {
    // A minute for `make soak-live`, mono like the null sink it is played into: a swipe every
    // 4 s (the test cards' Track 1 or Track 2, both directions, 20-60 cm/s, and one a minute at
    // 8 cm/s, a merchant's slow swipe, whose segment is longer than the second the decoder's
    // buffers keep) over a noise bed at about -60 dBFS.
    var samples: [Float] = []
    for k in 0..<15 {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 60
        audio.leadingSilence = 1.5
        let format: TrackFormat = k % 2 == 0 ? .track1 : .track2
        let text = format == .track1 ? GridCards.track1[k % 3] : GridCards.track2[[0, 1, 3][k % 3]]
        let speed = k == 7 ? 80 : 200 + Double(k % 5) * 100
        let motion = Motion(speed: .constant(speed), direction: k % 3 == 0 ? .reverse : .forward)
        let swipe = SwipeSynthesizer.render(SwipeScenario(tracks: [try! StripeTrack(text: text, format: format)], motion: motion,
                                                          audio: audio, seed: UInt64(300 + k)))
        samples += swipe.channels[0] + [Float](repeating: 0, count: max(0, 4 * 44_100 - swipe.channels[0].count))
    }
    var random = SynthRandom(seed: 41)
    for k in samples.indices { samples[k] += Float(0.001 * random.gaussian()) }
    do {
        try FileBytes.write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [samples])), to: path)
    } catch {
        print("cannot write \(path): \(error)")
        exit(2)
    }
    exit(0)
}
if let path = option("--sample-wav") {
    // data/sample-swipe.wav, which the package ships so that `posminid decode` can be tried where
    // there is no reader: one swipe of the published Visa test card on a two-head reader.
    var audio = AudioPath(sampleRate: 44_100)
    audio.snr = 32
    audio.leadingSilence = 0.2
    audio.trailingSilence = 0.2
    let tracks = [try! StripeTrack(text: GridCards.track1[0], format: .track1),
                  try! StripeTrack(text: GridCards.track2[0], format: .track2)]
    let swipe = SwipeSynthesizer.render(SwipeScenario(tracks: tracks, motion: Motion(speed: .constant(500)),
                                                      audio: audio, seed: 26))
    do {
        try FileBytes.write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: swipe.channels)), to: path)
    } catch {
        print("cannot write \(path): \(error)")
        exit(2)
    }
    exit(0)
}
if let path = option("--demo-wav") {
    // `make demo`'s recording, a two-head reader (Tracks 1 and 2) and the published test cards:
    // a Visa swipe cut short (the reader reports it and stays armed), the Visa again, a
    // MasterCard pulled back the other way and fast, an Amex swiped slowly and speeding up.
    var channels: [[Float]] = [[], []]
    func add(card: (String, String), speed: SpeedProfile, direction: SwipeDirection = .forward,
             travel: ClosedRange<Double> = 0...1, seed: UInt64, lead: Double) {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 32
        audio.leadingSilence = lead
        audio.trailingSilence = 1.2
        let motion = Motion(speed: speed, direction: direction, travel: travel)
        let tracks = [try! StripeTrack(text: card.0, format: .track1), try! StripeTrack(text: card.1, format: .track2)]
        let swipe = SwipeSynthesizer.render(SwipeScenario(tracks: tracks, motion: motion, audio: audio, seed: seed))
        channels[0] += swipe.channels[0]
        channels[1] += swipe.channels[1]
    }
    let visa = (GridCards.track1[0], GridCards.track2[0])
    let mastercard = (GridCards.track1[1], GridCards.track2[1])
    let amex = (GridCards.track1[2], GridCards.track2[3])
    add(card: visa, speed: .constant(400), travel: 0...0.45, seed: 1, lead: 2.5)
    add(card: visa, speed: .constant(400), seed: 2, lead: 1.0)
    add(card: mastercard, speed: .constant(1_200), direction: .reverse, seed: 3, lead: 2.0)
    add(card: amex, speed: .accelerating(from: 150, to: 600), seed: 4, lead: 2.0)
    for c in 0..<2 { channels[c] += [Float](repeating: 0, count: 44_100 * 20) }
    do {
        try FileBytes.write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: channels)), to: path)
    } catch {
        print("cannot write \(path): \(error)")
        exit(2)
    }
    exit(0)
}
if args.contains("--swipes-once") {
    // One pass over a short stream: for instruction counts under callgrind.
    let (stream, _) = swipeStream(rate: 44_100, count: 12)
    print(run(stream, rate: 44_100, period: 441).swipes)
    exit(0)
}
if args.contains("--idle-only") {
    let idle = idleStream(rate: 44_100, seconds: 60)
    for _ in 0..<5 { print(run(idle, rate: 44_100, period: 441).cpu) }
    exit(0)
}

print("# posmini-bench (release build, \(cpuModel()), \(processorCount()) cores)\n")
var firstHard: (Tally, Tally)?
if only == nil || only == "accuracy" {
    firstHard = await accuracyReport(cases: cases, seed: seed, allNominal: allNominal, showFailures: showFailures)
}
if only == nil || only == "accuracy" || only == "physics" {
    let physicsSeed = option("--physics-seed").flatMap { UInt64($0) } ?? PhysicsGrid.reportSeed
    let physicsCases = option("--physics-cases").flatMap { Int($0) } ?? 3_000
    let secondHard = await physicsReport(cases: physicsCases, seed: physicsSeed, showFailures: showFailures)
    if let firstHard { printHardRegion(first: firstHard, second: secondHard) }
}
if only == nil || only == "fast" {
    await fastRegimeReport(seed: option("--fast-seed").flatMap { UInt64($0) } ?? FastRegime.reportSeed)
}
if only == nil || only == "worst-case" {
    worstCaseReport()
}
if only == nil || only == "reasons" {
    await reasonReport(seed: seed)
}
if only == nil || only == "noise" {
    noiseReport(secondsEach: noiseSeconds)
}
if only == nil || only == "false-accepts" {
    await falseAcceptReport(trials: trials, seed: seed)
    await physicsFalseAcceptReport(trials: option("--physics-trials").flatMap { Int($0) } ?? 15_000,
                                   seed: option("--physics-seed").flatMap { UInt64($0) } ?? PhysicsGrid.reportSeed)
}
if only == nil || only == "throughput" {
    throughputReport()
}
if only == nil || only == "capture" {
    captureReport(ringSamples: option("--ring-samples").flatMap { Int($0) } ?? 200_000_000)
}
if only == nil || only == "reply" {
    replyTimeReport()
}
if only == nil || only == "metrics" {
    metricsCostReport()
}

/// `--margins N`: every candidate's passing read over N grid cases, true against false, to set
/// the acceptance rules from data.
func marginStudy(_ cases: Int, seed: UInt64) {
    struct Row { var truth: Bool; var weakest: Float; var weak: Int; var corrected: Float?; var candidate: Int; var status: String }
    var rows: [Row] = []
    for k in 0..<cases {
        let c = gridCase(k, seed: seed)
        let swipe = SwipeSynthesizer.render(c.scenario)
        let decoder = benchDecoder(swipe.sampleRate)
        decoder.exhaustive = true
        decoder.candidateObserver = { index, read in
            guard let text = read.text else { return }
            switch read.status {
            case .ok, .failed(.unconfirmed), .failed(.doubtful): break
            default: return
            }
            rows.append(Row(truth: text.revealed() == c.text, weakest: read.weakest ?? -1, weak: read.weakBits,
                            corrected: read.correctedConfidence, candidate: index, status: read.status.code))
        }
        _ = decoder.push(swipe.channels[0]) + decoder.finish()
    }
    for truth in [true, false] {
        let r = rows.filter { $0.truth == truth }
        print("\(truth ? "TRUE" : "FALSE") reads: \(r.count), corrected \(r.filter { $0.corrected != nil }.count), unconfirmed \(r.filter { $0.status == "unconfirmed" }.count), primary \(r.filter { $0.candidate == 0 }.count)")
        for w in [0, 1, 2, 3, 5, 10] { print("  weak bits <= \(w): \(r.filter { $0.weak <= w }.count)") }
        for t: Float in [0, 0.1, 0.2, 0.3, 0.5] { print("  weakest > \(t): \(r.filter { $0.weakest > t }.count)") }
        let cc = r.compactMap(\.corrected).sorted()
        print("  corrected-bit confidence: \(cc.prefix(5)) … \(cc.suffix(5))")
        if !truth {
            for x in r.prefix(40) { print("   false: weak \(x.weak) weakest \(x.weakest) corrected \(x.corrected ?? -1) candidate \(x.candidate) \(x.status)") }
        }
    }
}

/// A decoder at one of the bench's own rates, every one within `SampleRate.supported`.
func benchDecoder(_ rate: Int) -> SwipeDecoder {
    do { return try SwipeDecoder(sampleRate: rate) } catch { fatalError("posmini-bench: \(error)") }
}
