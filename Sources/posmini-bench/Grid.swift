import Magstripe
import SwipeSynth
import SwipeDecoder

/// Test cards for the grid: published test numbers only.
enum GridCards {
    static let track1 = [
        "%B4111111111111111^CARDHOLDER/TEST A^2812101000000000000000123456?",
        "%B5555555555554444^MASTERCARD/TEST^3005201123400000000000?",
        "%B378282246310005^AMEX/TEST CARD^2909101000000000?",
        "%B6212345678901232^UNIONPAY/TEST^2712201000000000000000000000000000?",
    ]
    static let track2 = [
        ";4111111111111111=28121010000012345678?",
        ";5555555555554444=30052011234000000000?",
        ";6212345678901234=30122010000000000000?",
        ";378282246310005=2909101000000000?",
    ]
    static let track3 = [
        ";011234567890123445=724724100000000000030300000040400099010=000000000000000000000000==1=0000000000000?",
        ";0162123456789012320=15615600000000000000003000000001010009901=00000000000000000000000000000=?",
    ]

    static func texts(_ f: TrackFormat) -> [String] {
        switch f {
        case .track1: track1
        case .track2: track2
        case .track3: track3
        }
    }
}

/// One grid point.
struct GridCase {
    var scenario: SwipeScenario
    var text: String
    var format: TrackFormat
    var nominal: Bool
    var minSamplesPerHalfCell: Double
    var label: String
    var speed: Double      // cm/s (the profile's mean)
    var ratio: Double
    var snr: Double
    var rate: Int
}

struct GridGenerator {
    var rng: SynthRandom

    static let speeds: [Double] = [5, 7.5, 10, 15, 20, 30, 50, 75, 100, 125, 150, 200, 250]
    static let rates = [16_000, 22_050, 44_100, 48_000, 96_000]
    static let snrs: [Double] = [12, 14, 16, 20, 25, 30, 40]
    static let ratios: [Double] = [1, 1.5, 2, 3, 4]

    mutating func pick<T>(_ a: [T]) -> T { a[Int(rng.uniform() * Double(a.count)) % a.count] }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * rng.uniform() }

    /// A case anywhere in the grid, or (with `nominal`) inside the nominal region:
    /// 44.1 kHz, speed 10-150 cm/s (Track 2) or 10-100 (Tracks 1 and 3), ratio ≤ 2, SNR ≥ 20 dB.
    mutating func make(nominal: Bool) -> GridCase {
        let format: TrackFormat = pick([.track1, .track2, .track3])
        let text = pick(GridCards.texts(format))
        let rate = nominal ? 44_100 : pick(Self.rates)
        let maxNominal = format == .track2 ? 150.0 : 100.0
        let speed = nominal ? pick(Self.speeds.filter { $0 >= 10 && $0 <= maxNominal }) : pick(Self.speeds)
        let ratio = nominal ? pick([1, 1.5, 2]) : pick(Self.ratios)
        let snr = nominal ? pick([20, 25, 30, 40]) : pick(Self.snrs)
        let mm = speed * 10
        let profile: SpeedProfile
        var shape = "constant"
        if ratio <= 1 {
            profile = .constant(mm)
        } else {
            let lo = mm / ratio.squareRoot(), hi = mm * ratio.squareRoot()
            switch Int(rng.uniform() * 4) {
            case 0: profile = .accelerating(from: lo, to: hi); shape = "accel"
            case 1: profile = .decelerating(from: hi, to: lo); shape = "decel"
            case 2: profile = .riseAndFall(slowest: lo, fastest: hi); shape = "hand"
            default: profile = .jerky(mean: mm, ratio: ratio, changes: 2 + Int(rng.uniform() * 5)); shape = "jerky"
            }
        }
        var track = try! StripeTrack(text: text, format: format)
        track.jitter = uniform(0, nominal ? 0.03 : 0.06)
        track.densityError = uniform(-0.03, 0.03)
        track.amplitudeVariation = uniform(0, 0.1)
        var audio = AudioPath(sampleRate: rate)
        audio.snr = snr
        audio.level = uniform(-30, -6)
        audio.highPass = pick([20, 50, 100, 200, 300, 500])
        audio.leadingSilence = uniform(0.03, 0.2)
        audio.trailingSilence = uniform(0.05, 0.2)
        audio.dcOffset = uniform(-0.02, 0.02)
        var impairments: [String] = []
        if rng.uniform() < 0.3 { audio.hum = Hum(frequency: pick([50, 60]), level: uniform(-25, -12)); impairments.append("hum") }
        if rng.uniform() < 0.2 { audio.level = uniform(0, 4); impairments.append("clip") }
        if rng.uniform() < 0.25 { audio.gainDrift = GainDrift(depth: uniform(3, 8), period: uniform(0.3, 1.5)); impairments.append("agc") }
        if !nominal && rng.uniform() < 0.1 { audio.clicks = Clicks(perSecond: uniform(1, 5), level: uniform(-6, 3)); impairments.append("clicks") }
        let head = HeadModel(pulseWidthMicrometres: uniform(20, 60))
        let direction: SwipeDirection = rng.uniform() < 0.5 ? .forward : .reverse
        let scenario = SwipeScenario(tracks: [track], motion: Motion(speed: profile, direction: direction),
                                     head: head, audio: audio, seed: rng.next())
        let fastest = profile.range.upperBound
        let samplesPerHalfCell = Double(rate) / (2 * format.bitsPerMillimetre * fastest)
        let label = "\(format) \(Int(speed))cm/s x\(ratio) \(shape) \(Int(snr))dB \(rate)Hz hp\(Int(audio.highPass!)) \(direction) \(impairments.joined(separator: ","))"
        return GridCase(scenario: scenario, text: text, format: format, nominal: nominal,
                        minSamplesPerHalfCell: samplesPerHalfCell, label: label,
                        speed: speed, ratio: ratio, snr: snr, rate: rate)
    }
}
