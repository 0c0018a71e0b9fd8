import Magstripe
import SwipeSynth
import SwipeDecoder
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// Outcome of one grid case.
enum Outcome { case read, failed, falseAccept }

func run(_ c: GridCase) -> (Outcome, [Swipe]) {
    let swipe = SwipeSynthesizer.render(c.scenario)
    let decoder = SwipeDecoder(sampleRate: swipe.sampleRate)
    let results = decoder.push(swipe.channels[0]) + decoder.finish()
    var outcome = Outcome.failed
    for r in results {
        for t in r.tracks where t.isOK {
            if t.text == c.text { if outcome != .falseAccept { outcome = .read } } else { outcome = .falseAccept }
        }
    }
    return (outcome, results)
}

struct Tally {
    var n = 0, read = 0, fa = 0
    mutating func add(_ o: Outcome) { n += 1; if o == .read { read += 1 }; if o == .falseAccept { fa += 1 } }
    var rate: Double { n == 0 ? 0 : 100 * Double(read) / Double(n) }
}

func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
func fmt(_ x: Double, _ d: Int = 2) -> String {
    var m = 1.0; for _ in 0..<d { m *= 10 }
    let v = (x * m).rounded() / m
    return String(v)
}

let args = CommandLine.arguments
var count = 2_000
var showFailures = 0
var seed: UInt64 = 2026
var onlyNominal = false
var inspect: Int?
var margins: Int?
var recording: String?
var falseAccepts: Int?
var throughputOnly = false
var i = 1
while i < args.count {
    switch args[i] {
    case "--cases": count = Int(args[i + 1])!; i += 1
    case "--show-failures": showFailures = Int(args[i + 1])!; i += 1
    case "--seed": seed = UInt64(args[i + 1])!; i += 1
    case "--nominal": onlyNominal = true
    case "--inspect": inspect = Int(args[i + 1])!; i += 1
    case "--margins": margins = Int(args[i + 1])!; i += 1
    case "--recording": recording = args[i + 1]; i += 1
    case "--false-accepts": falseAccepts = Int(args[i + 1])!; i += 1
    case "--throughput": throughputOnly = true
    default: break
    }
    i += 1
}

@MainActor func gridCase(_ k: Int) -> GridCase {
    var gen = GridGenerator(rng: SynthRandom(seed: seed &* 1_000_003 &+ UInt64(k)))
    return gen.make(nominal: onlyNominal || k % 2 == 0)
}
if args.contains("--swipes-only") {
    let (stream, _) = swipeStream(rate: 44_100, count: 60)
    for _ in 0..<5 { let r = run(stream, rate: 44_100, period: 441); print(r.cpu, Double(stream.count) / r.cpu / 44_100, "x RT", r.swipes) }
    exit(0)
}
if args.contains("--idle-only") {
    let idle = idleStream(rate: 44_100, seconds: 60)
    for _ in 0..<5 { print(run(idle, rate: 44_100, period: 441).cpu) }
    exit(0)
}
if throughputOnly {
    throughputReport()
    exit(0)
}
if let i = args.firstIndex(of: "--trial-debug") {
    let k = Int(args[i + 1])!
    var rng = SynthRandom(seed: seed &* 7_919 &+ UInt64(k))
    let kind = TrialKind(rawValue: k % TrialKind.allCases.count)!
    let (samples, rate, acceptable, _) = makeTrial(kind, rng: &rng)
    print("acceptable:", acceptable)
    let decoder = SwipeDecoder(sampleRate: rate)
    decoder.candidateObserver = { index, read in
        if let t = read.text { print("cand \(index) \(read.status.code) corr \(read.corrections) conf \(read.correctedConfidence ?? -1) weak \(read.weakBits) weakest \(read.weakest ?? -1) text \(t)") }
    }
    for r in decoder.push(samples) + decoder.finish() { for t in r.tracks where t.isOK { print("OK:", t.text ?? "", "candidate", r.quality.candidate ?? -1) } }
    exit(0)
}
if let i = args.firstIndex(of: "--trial-list") {
    for k in args[i + 1].split(separator: ",").compactMap({ Int($0) }) {
        let r = falseAcceptTrials(k..<(k + 1), seed: seed)
        let fa = r.values.reduce(0) { $0 + $1.falseAccepts }
        print("trial \(k): \(fa) false accepts")
    }
    exit(0)
}
if let falseAccepts {
    let cores = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    let per = (falseAccepts + cores - 1) / cores
    let started = clock_gettime_seconds()
    let seedValue = seed
    let parts = await withTaskGroup(of: [TrialKind: TrialResult].self) { group in
        for c in 0..<cores {
            group.addTask { falseAcceptTrials((c * per)..<min(falseAccepts, (c + 1) * per), seed: seedValue) }
        }
        var all: [[TrialKind: TrialResult]] = []
        for await part in group { all.append(part) }
        return all
    }
    print("| false-accept trials | trials | false accepts | true reads |")
    print("| --- | ---: | ---: | ---: |")
    var total = TrialResult(kind: .noise)
    for kind in TrialKind.allCases {
        var r = TrialResult(kind: kind)
        for p in parts { if let x = p[kind] { r.trials += x.trials; r.falseAccepts += x.falseAccepts; r.trueReads += x.trueReads } }
        total.trials += r.trials; total.falseAccepts += r.falseAccepts; total.trueReads += r.trueReads
        print("| \(kind) | \(r.trials) | \(r.falseAccepts) | \(r.trueReads) |")
    }
    print("| **all** | \(total.trials) | \(total.falseAccepts) | \(total.trueReads) |")
    print("(\(fmt(clock_gettime_seconds() - started, 1)) s on \(cores) threads)")
    exit(0)
}
if let recording {
    let audio = try! WAV.decode(readAll(recording))
    func show(_ label: String, _ x: [Float], _ rate: Int) {
        let d = SwipeDecoder(sampleRate: rate)
        for r in d.push(x) + d.finish() {
            print(label, "swipe \(r.start)-\(r.end) bits \(r.bits.count) repairs \(r.repairedCells) bridged \(r.bridgedCells) jitter \(r.quality.jitter)")
            print("  ", r.bits.map { String($0) }.joined())
        }
    }
    let x = audio.channels[0]
    show("forward", x, audio.sampleRate)
    show("reversed", x.reversed(), audio.sampleRate)
    let other = audio.sampleRate == 48_000 ? 44_100 : 48_000
    show("resampled \(other)", Resampler.resample(x, from: audio.sampleRate, to: other), other)
    exit(0)
}
if let margins {
    marginStudy(margins)
    exit(0)
}
if let inspect {
    let c = gridCase(inspect)
    print(c.label, "sphc", c.minSamplesPerHalfCell)
    let swipe = SwipeSynthesizer.render(c.scenario)
    print("truth: pulses \(swipe.tracks[0].pulses.count) bits \(swipe.tracks[0].bits.count) start \(swipe.swipeStart) end \(swipe.swipeEnd)")
    if let f = fopen("/tmp/case.raw", "wb") {
        let q = swipe.channels[0].map { Int16(max(-32768, min(32767, ($0 * 32768).rounded()))) }
        q.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 2, $0.count, f) }
        fclose(f)
    }
    if let f = fopen("/tmp/case.bits", "w") {
        fputs(swipe.tracks[0].bits.map { String($0) }.joined() + "\n", f)
        fclose(f)
    }
    if let f = fopen("/tmp/case.truth", "w") {
        for p in swipe.tracks[0].pulses { fputs("\(p.time * Double(swipe.sampleRate)) \(p.polarity)\n", f) }
        fclose(f)
    }
    let decoder = SwipeDecoder(sampleRate: swipe.sampleRate)
    decoder.trace = { print("  " + $0) }
    let results = decoder.push(swipe.channels[0]) + decoder.finish()
    for r in results {
        print("swipe \(r.start)-\(r.end) problem \(r.problem?.rawValue ?? "-") tracks \(r.tracks.map { "\($0.status.code) ok=\($0.text == c.text)" })")
    }
    exit(0)
}
var nominal = Tally(), whole = Tally(), wholeEligible = Tally()
var rows: [String: Tally] = [:]
var failures: [String] = []
var okStats: [(Float, Int, Float?, Int)] = []
for k in 0..<count {
    let c = gridCase(k)
    let (o, results) = run(c)
    if c.nominal { nominal.add(o) }
    if !c.nominal || true { whole.add(o) }
    if c.minSamplesPerHalfCell >= 2 { wholeEligible.add(o) }
    if o == .read {
        for r in results { for t in r.tracks where t.isOK {
            okStats.append((t.weakest ?? -1, t.weakBits, t.correctedConfidence, r.quality.candidate ?? -1))
        } }
    }
    let speedBucket = c.speed < 10 ? "<10" : c.speed <= 50 ? "10-50" : c.speed <= 100 ? "50-100" : c.speed <= 150 ? "100-150" : ">150"
    rows["\(c.format) \(speedBucket)cm/s", default: Tally()].add(o)
    rows["snr \(Int(c.snr))", default: Tally()].add(o)
    rows["rate \(c.rate)", default: Tally()].add(o)
    rows["ratio \(c.ratio)", default: Tally()].add(o)
    for tag in ["hum", "clip", "agc", "clicks"] where c.label.contains(tag) { rows["with \(tag)", default: Tally()].add(o) }
    rows["hp \(Int(c.scenario.audio.highPass ?? 0))", default: Tally()].add(o)
    if c.minSamplesPerHalfCell >= 2 {
        let band = c.minSamplesPerHalfCell < 4 ? "2-4" : c.minSamplesPerHalfCell < 10 ? "4-10" : "10+"
        rows["z snr \(Int(c.snr)) sphc \(band)", default: Tally()].add(o)
    }
    if o == .falseAccept {
        for r in results { for t in r.tracks where t.isOK && t.text != c.text {
            let a = Array(t.text!.utf8), b = Array(c.text.utf8)
            var firstDiff = 0
            while firstDiff < min(a.count, b.count) && a[firstDiff] == b[firstDiff] { firstDiff += 1 }
            print("FALSE ACCEPT #\(k) \(c.label) got \(a.count) chars vs \(b.count), first difference at \(firstDiff), corrected \(t.corrections) (conf \(t.correctedConfidence ?? -1)), weakest \(t.weakest ?? -1) weak bits \(t.weakBits), candidate \(r.quality.candidate ?? -1) format \(t.format!)")
        } }
    }
    if o != .read && failures.count < showFailures && c.minSamplesPerHalfCell >= 2 {
        let why = results.map { r in "[\(r.tracks.map { $0.status.code }.joined(separator: ",")) \(r.problem?.rawValue ?? "-") cand \(r.quality.candidatesTried)]" }.joined()
        failures.append("#\(k) \(o) \(c.label) sphc=\(fmt(c.minSamplesPerHalfCell)) → \(results.count) swipes \(why)")
    }
}
print("| row | swipes | read % | false accepts |")
print("| --- | ---: | ---: | ---: |")
for key in rows.keys.sorted() {
    let t = rows[key]!
    print("| \(key) | \(t.n) | \(fmt(t.rate)) | \(t.fa) |")
}
print("| **nominal region** | \(nominal.n) | \(fmt(nominal.rate, 3)) | \(nominal.fa) |")
print("| **whole grid, ≥ 2 samples per half-cell** | \(wholeEligible.n) | \(fmt(wholeEligible.rate, 3)) | \(wholeEligible.fa) |")
print("| **whole grid, all** | \(whole.n) | \(fmt(whole.rate, 3)) | \(whole.fa) |")
for f in failures { print(f) }

// Margins of the true reads, to set acceptance thresholds against.
let corrected = okStats.compactMap { $0.2 }.sorted()
print("true reads: \(okStats.count); weakest-bit confidence quantiles:",
      [0.001, 0.01, 0.05, 0.5].map { q in okStats.map(\.0).sorted()[min(okStats.count - 1, Int(Double(okStats.count) * q))] })
print("true reads with weak bits: \(okStats.filter { $0.1 > 0 }.count), with corrections: \(corrected.count), corrected-bit confidence max \(corrected.last ?? -1), non-primary: \(okStats.filter { $0.3 != 0 }.count)")

/// `--margins N`: every candidate's passing read over N grid cases, true against false, to set
/// the acceptance rules from data.
@MainActor func marginStudy(_ cases: Int) {
    struct Row { var truth: Bool; var weakest: Float; var weak: Int; var corrected: Float?; var candidate: Int; var status: String }
    var rows: [Row] = []
    for k in 0..<cases {
        let c = gridCase(k)
        let swipe = SwipeSynthesizer.render(c.scenario)
        let decoder = SwipeDecoder(sampleRate: swipe.sampleRate)
        decoder.exhaustive = true
        decoder.candidateObserver = { index, read in
            guard let text = read.text else { return }
            switch read.status {
            case .ok, .failed(.unconfirmed), .failed(.doubtful): break
            default: return
            }
            rows.append(Row(truth: text == c.text, weakest: read.weakest ?? -1, weak: read.weakBits,
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

func readAll(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

func clock_gettime_seconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
