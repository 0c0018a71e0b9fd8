import Magstripe
import SwipeSynth
import SwipeDecoder

/// Outcome of one grid case.
enum Outcome: Sendable { case read, failed, falseAccept }

struct Tally: Sendable {
    var n = 0, read = 0, fa = 0
    mutating func add(_ o: Outcome) { n += 1; if o == .read { read += 1 }; if o == .falseAccept { fa += 1 } }
    mutating func merge(_ other: Tally) { n += other.n; read += other.read; fa += other.fa }
    var rate: Double { n == 0 ? 0 : 100 * Double(read) / Double(n) }
}

/// Case `k` of the grid: even indices lie in the nominal region, odd ones anywhere.
func gridCase(_ k: Int, seed: UInt64, allNominal: Bool = false) -> GridCase {
    var gen = GridGenerator(rng: SynthRandom(seed: seed &* 1_000_003 &+ UInt64(k)))
    return gen.make(nominal: allNominal || k % 2 == 0)
}

func decodeCase(_ c: GridCase) -> (Outcome, [Swipe]) {
    decodeCaseCountingBursts(c).0
}

/// The outcome, the swipes, and the segments dropped as noise bursts.
func decodeCaseCountingBursts(_ c: GridCase) -> ((Outcome, [Swipe]), [NoiseBurst]) {
    let swipe = SwipeSynthesizer.render(c.scenario)
    let decoder = benchDecoder(swipe.sampleRate)
    let results = decoder.push(swipe.channels[0]) + decoder.finish()
    return ((outcome(of: results, card: c.text), results), decoder.takeNoiseBursts())
}

/// Read when an ok track holds the card's text; a false accept when any ok track holds other text.
func outcome(of results: [Swipe], card text: String) -> Outcome {
    var outcome = Outcome.failed
    for r in results {
        for t in r.tracks where t.isOK {
            if t.text?.revealed() == text { if outcome != .falseAccept { outcome = .read } } else { outcome = .falseAccept }
        }
    }
    return outcome
}

/// Tallies for a slice of the grid.
struct AccuracyPart: Sendable {
    var nominal = Tally(), whole = Tally(), eligible = Tally()
    /// Issue 22's hard region (`inHardRegion`), and its Track 1 part.
    var hard = Tally(), hardTrack1 = Tally()
    var rows: [String: Tally] = [:]
    var failures: [String] = []
    var corrected = 0
    var fallback = 0
    /// Swipes that gave no swipe object at all (no read, no failure), and those among them
    /// that the noise-burst line dropped (a clock was found, and judged noise).
    var unreported = 0, unreportedAsNoise = 0

    mutating func merge(_ o: AccuracyPart) {
        nominal.merge(o.nominal); whole.merge(o.whole); eligible.merge(o.eligible)
        hard.merge(o.hard); hardTrack1.merge(o.hardTrack1)
        for (k, v) in o.rows { rows[k, default: Tally()].merge(v) }
        failures += o.failures
        corrected += o.corrected
        fallback += o.fallback
        unreported += o.unreported
        unreportedAsNoise += o.unreportedAsNoise
    }
}

func accuracyPart(_ range: Range<Int>, seed: UInt64, allNominal: Bool, showFailures: Int) -> AccuracyPart {
    var part = AccuracyPart()
    for k in range {
        let c = gridCase(k, seed: seed, allNominal: allNominal)
        let ((o, results), allBursts) = decodeCaseCountingBursts(c)
        let bursts = allBursts.filter { $0.reason != .noSwipe }
        if results.isEmpty {
            part.unreported += 1
            if !bursts.isEmpty {
                part.unreportedAsNoise += 1
                if part.failures.count < showFailures {
                    part.failures.append("#\(k) \(c.label) sphc=\(fmt(c.minSamplesPerHalfCell)) → dropped: \(bursts.map(\.reason.rawValue))")
                }
            }
        }
        if c.nominal { part.nominal.add(o) }
        part.whole.add(o)
        if c.minSamplesPerHalfCell >= 2 { part.eligible.add(o) }
        // The same rows as the second model's (PhysicsGrid), samples per half-cell at the
        // swipe's fastest point.
        part.rows["by track: \(c.format)", default: Tally()].add(o)
        part.rows["by samples per half-cell: \(halfCellBand(c.minSamplesPerHalfCell))", default: Tally()].add(o)
        part.rows["by SNR band: \(snrBand(c.snr)) dB", default: Tally()].add(o)
        if inHardRegion(snr: c.snr, rate: c.rate, samplesPerHalfCell: c.minSamplesPerHalfCell) {
            part.hard.add(o)
            if c.format == .track1 { part.hardTrack1.add(o) }
        }
        if o == .read {
            for r in results where !r.readTracks.isEmpty {
                if r.readTracks.contains(where: { $0.corrections > 0 }) { part.corrected += 1 }
                if (r.quality.candidate ?? 0) != 0 { part.fallback += 1 }
            }
        }
        let speed = c.speed < 10 ? "a <10" : c.speed <= 50 ? "b 10-50" : c.speed <= 100 ? "c 50-100" : c.speed <= 150 ? "d 100-150" : "e >150"
        part.rows["format × speed: \(c.format), \(speed) cm/s", default: Tally()].add(o)
        part.rows["SNR \(Int(c.snr)) dB", default: Tally()].add(o)
        part.rows["rate \(c.rate) Hz", default: Tally()].add(o)
        part.rows["speed ratio \(c.ratio)", default: Tally()].add(o)
        part.rows["direction \(c.scenario.motion.direction)", default: Tally()].add(o)
        part.rows["high-pass \(Int(c.scenario.audio.highPass ?? 0)) Hz", default: Tally()].add(o)
        for tag in ["hum", "clip", "agc", "clicks"] where c.label.contains(tag) { part.rows["with \(tag)", default: Tally()].add(o) }
        if c.minSamplesPerHalfCell >= 2 {
            let band = c.minSamplesPerHalfCell < 4 ? "2-4" : c.minSamplesPerHalfCell < 10 ? "4-10" : "10+"
            part.rows["SNR \(Int(c.snr)) dB × samples per half-cell \(band)", default: Tally()].add(o)
        }
        if o == .falseAccept {
            part.failures.append("FALSE ACCEPT #\(k) \(c.label)")
        } else if o != .read && part.failures.count < showFailures && c.minSamplesPerHalfCell >= 2 {
            let why = results.map { r in "[\(r.tracks.map { $0.status.code }.joined(separator: ",")) \(r.problem?.rawValue ?? "-")]" }.joined()
            part.failures.append("#\(k) \(c.label) sphc=\(fmt(c.minSamplesPerHalfCell)) → \(results.count) swipes \(why)")
        }
    }
    return part
}

/// A report's table: its rows sorted by name, then its totals (to three decimals, in bold when
/// asked).
func printTallies(_ rows: [String: Tally], totals: [(label: String, tally: Tally, bold: Bool)]) {
    print("| row | swipes | read % | false accepts |")
    print("| --- | ---: | ---: | ---: |")
    for key in rows.keys.sorted() {
        let t = rows[key]!
        print("| \(key) | \(t.n) | \(fmt(t.rate)) | \(t.fa) |")
    }
    for (label, t, bold) in totals {
        let b = bold ? "**" : ""
        print("| \(b)\(label)\(b) | \(t.n) | \(b)\(fmt(t.rate, 3))\(b) | \(t.fa) |")
    }
}

/// Returns the hard region's tallies (all tracks, Track 1).
@discardableResult
func accuracyReport(cases: Int, seed: UInt64, allNominal: Bool, showFailures: Int) async -> (Tally, Tally) {
    let started = monotonicSeconds()
    let cores = processorCount()
    var total = AccuracyPart()
    for part in await inParallel(cases, { accuracyPart($0, seed: seed, allNominal: allNominal,
                                                       showFailures: showFailures / cores + 1) }) {
        total.merge(part)
    }
    print("## Accuracy over the SwipeSynth grid (\(cases) swipes, seed \(seed))\n")
    print("Grid: Tracks 1, 2, 3 × speed 5-250 cm/s × speed ratio 1-4 (accelerating, decelerating, a hand's rise and fall,")
    print("jerky) × SNR 12-40 dB (median pulse peak over noise RMS) × direction × 16/22.05/44.1/48/96 kHz × high-pass")
    print("20-500 Hz, with hum (-25 to -12 dB re pulse), clipping (pulses at 0 to +4 dBFS), gain drift (3-8 dB), clicks;")
    print("head pulse width 20-60 µm, jitter up to 6 %, density error ±3 %. Nominal region: 44.1 kHz, 10-150 cm/s (Track 2),")
    print("10-100 cm/s (Tracks 1, 3), ratio ≤ 2, SNR ≥ 20 dB. A false accept is an ok read whose text is not the card's.")
    print("Samples per half-cell, everywhere in this report: at the swipe's fastest point.\n")
    printTallies(total.rows, totals: [
        ("nominal region", total.nominal, true), ("whole grid, ≥ 2 samples per half-cell", total.eligible, true),
        ("whole grid, all", total.whole, false),
        ("hard region (SNR ≥ 14 dB, 22.05-96 kHz, ≥ 2 samples per half-cell)", total.hard, false),
        ("hard region, Track 1", total.hardTrack1, false),
    ])
    print("\nReads that needed a single-bit correction: \(total.corrected); read by a fallback setting: \(total.fallback).")
    print("Swipes that gave no result at all (neither read nor failed): \(total.unreported), of which a clock was found and judged a noise burst: \(total.unreportedAsNoise).")
    for f in total.failures { print(f) }
    print("(\(fmt(monotonicSeconds() - started, 1)) s on \(cores) threads)\n")
    return (total.hard, total.hardTrack1)
}
