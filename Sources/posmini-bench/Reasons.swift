import Magstripe
import SwipeDecoder
import SwipeSynth

/// Issue 23, item 8: whether a failed swipe's reason gives the merchant the right advice. For
/// each true cause, swipes synthesized with that cause alone (everything else nominal), and
/// the reason the decoder reported for those that failed.
enum ReasonGrid {
    enum Cause: String, CaseIterable, Sendable {
        case weak = "too weak (peaks -50 to -40 dBFS over converter noise)"
        case noisy = "too noisy (SNR 4-10 dB)"
        case tooFast = "too fast for the rate (< 2 samples per half-cell)"
        case tooSlow = "too slow or stopped (1-3.5 cm/s)"
        case partial = "partial swipe (pulled out at 30-70 %)"
        case uneven = "uneven speed (jerky, 6-10x)"
        case clipped = "clipped (driven 6-14 dB past full scale)"

        /// The reasons that give this cause's advice.
        var expected: Set<SwipeProblem> {
            switch self {
            case .weak: [.weakSignal]
            case .noisy: [.noisy]
            case .tooFast: [.tooFast]
            case .tooSlow: [.tooSlow]
            case .partial: [.partialSwipe]
            case .uneven: [.unevenSpeed]
            case .clipped: [.clipped]
            }
        }
    }

    static let perCause = 1_000

    static func causeIndex(_ cause: Cause) -> Int { Cause.allCases.firstIndex(of: cause) ?? 0 }

    /// Case `k` of `cause`: a nominal swipe (Track 1 or 2, 20-80 cm/s, 44.1 or 48 kHz, SNR
    /// 25-35 dB, -20 to -8 dBFS) with the cause written into it.
    static func scenario(_ cause: Cause, _ k: Int, seed: UInt64) -> (SwipeScenario, String) {
        // The case's seed mixed (SplitMix64's finalizer) before the xorshift draws: nearby seeds
        // (k, k + 1) give xorshift first outputs that differ in few bits, and the grid's swipes
        // came out alike, so that one seed's figures differed from another's by far more than
        // chance (too noisy: 167 or 594 swipes of 1 000 with no message).
        var z = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(k) &* 7_919 &+ UInt64(causeIndex(cause) + 1) &* 104_729_000_003
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        var r = PhysicsGrid.Draw(seed: z ^ (z >> 31))
        let format: TrackFormat = r.uniform() < 0.5 ? .track1 : .track2
        let text = r.pick(GridCards.texts(format))
        var speed = SpeedProfile.constant(200 + 600 * r.uniform())
        var travel: ClosedRange<Double> = 0...1
        var audio = AudioPath(sampleRate: r.uniform() < 0.5 ? 44_100 : 48_000)
        audio.snr = 25 + 10 * r.uniform()
        audio.level = -20 + 12 * r.uniform()
        switch cause {
        case .weak:
            // A capture volume too low: the pulses near the converter's own noise (-56 to
            // -50 dBFS), not a noisy reader.
            audio.level = -50 + 10 * r.uniform()
            audio.snr = audio.level + 50 + 6 * r.uniform()
        case .noisy: audio.snr = 4 + 6 * r.uniform()
        case .tooFast:
            // The half-cell below 2 samples: speed past rate / (4 · density) · 25.4 mm.
            let limit = Double(audio.sampleRate) / (4 * format.bitsPerInch) * 25.4
            speed = .constant(limit * (1.1 + 0.9 * r.uniform()))
        case .tooSlow: speed = .constant(10 + 25 * r.uniform())
        case .partial:
            travel = 0...(0.3 + 0.4 * r.uniform())
        case .uneven: speed = .jerky(mean: 300 + 300 * r.uniform(), ratio: 6 + 4 * r.uniform(), changes: 6)
        case .clipped: audio.level = 6 + 8 * r.uniform()
        }
        let track = (try? StripeTrack(text: text, format: format)) ?? StripeTrack(bits: [], format: format)
        let motion = Motion(speed: speed, direction: r.uniform() < 0.5 ? .forward : .reverse, travel: travel)
        return (SwipeScenario(tracks: [track], motion: motion, audio: audio, seed: r.next()), text)
    }

    struct Part: Sendable {
        /// By cause: swipes, read, failed, and the reasons reported for the failed ones.
        var swipes: [String: Int] = [:], reads: [String: Int] = [:], unreported: [String: Int] = [:]
        var reasons: [String: [String: Int]] = [:]
        /// Too weak, by SNR band of 4 dB: swipes, and those that sent no message at all.
        var weakBySNR: [Int: (swipes: Int, silent: Int)] = [:]

        mutating func merge(_ o: Part) {
            for (k, v) in o.weakBySNR {
                let t = weakBySNR[k] ?? (0, 0)
                weakBySNR[k] = (t.swipes + v.swipes, t.silent + v.silent)
            }
            for (k, v) in o.swipes { swipes[k, default: 0] += v }
            for (k, v) in o.reads { reads[k, default: 0] += v }
            for (k, v) in o.unreported { unreported[k, default: 0] += v }
            for (k, v) in o.reasons { for (r, n) in v { reasons[k, default: [:]][r, default: 0] += n } }
        }
    }
}

func reasonReport(seed: UInt64) async {
    let started = monotonicSeconds()
    let causes = ReasonGrid.Cause.allCases
    let n = ReasonGrid.perCause
    var total = ReasonGrid.Part()
    for part in await inParallel(causes.count * n, { range -> ReasonGrid.Part in
        var part = ReasonGrid.Part()
        for i in range {
            let cause = causes[i / n]
            let (scenario, text) = ReasonGrid.scenario(cause, i % n, seed: seed)
            let audio = SwipeSynthesizer.render(scenario).channels[0]
            let decoder = benchDecoder(scenario.audio.sampleRate)
            let swipes = decoder.push(audio) + decoder.finish()
            part.swipes[cause.rawValue, default: 0] += 1
            let band = Int((scenario.audio.snr ?? 99) / 4)
            var silent = false
            defer {
                if cause == .weak {
                    let t = part.weakBySNR[band] ?? (0, 0)
                    part.weakBySNR[band] = (t.swipes + 1, t.silent + (silent ? 1 : 0))
                }
            }
            switch outcome(of: swipes, card: text) {
            case .read: part.reads[cause.rawValue, default: 0] += 1
            default:
                if let problem = swipes.compactMap(\.problem).first {
                    part.reasons[cause.rawValue, default: [:]][problem.rawValue, default: 0] += 1
                } else {
                    silent = true
                    part.unreported[cause.rawValue, default: 0] += 1
                }
            }
        }
        return part
    }) { total.merge(part) }
    print("## Failure reasons against the true cause (SwipeSynth, \(n) swipes per cause, seed \(seed))\n")
    print("Each cause alone on an otherwise nominal swipe; of the swipes that failed, the reason reported.")
    print("Target (issue 23, item 8): the true cause in ≥ 90 % of the failed swipes of each cause.\n")
    let names = SwipeProblem.allCases.map(\.rawValue)
    print("| cause | swipes | read | failed, no result | " + names.joined(separator: " | ") + " | right % |")
    print("| --- | ---: | ---: | ---: | " + names.map { _ in "---:" }.joined(separator: " | ") + " | ---: |")
    for cause in causes {
        let key = cause.rawValue
        let reasons = total.reasons[key] ?? [:]
        let failed = reasons.values.reduce(0, +)
        let right = cause.expected.reduce(0) { $0 + (reasons[$1.rawValue] ?? 0) }
        let share = failed > 0 ? fmt(100 * Double(right) / Double(failed), 1) : "-"
        print("| \(key) | \(total.swipes[key] ?? 0) | \(total.reads[key] ?? 0) | \(total.unreported[key] ?? 0) | "
              + names.map { String(reasons[$0] ?? 0) }.joined(separator: " | ") + " | \(share) |")
    }
    print("\nToo weak, by SNR (peak over the converter's noise): swipes that sent no message at all.\n")
    print("| SNR dB | swipes | no message | % |")
    print("| --- | ---: | ---: | ---: |")
    for band in total.weakBySNR.keys.sorted() {
        let t = total.weakBySNR[band] ?? (0, 0)
        print("| \(band * 4)-\(band * 4 + 4) | \(t.swipes) | \(t.silent) | \(fmt(100 * Double(t.silent) / Double(max(1, t.swipes)), 1)) |")
    }
    print("(\(fmt(monotonicSeconds() - started, 1)) s on \(processorCount()) threads)\n")
}
