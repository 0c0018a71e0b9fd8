import TestSupport
import Testing
import Magstripe
import SwipeSynth
import AudioFile

/// A Track 2 and a Track 1 of published test numbers.
let track2Text = ";4111111111111111=28121010000012345678?"
let track1Text = "%B4111111111111111^CARDHOLDER/TEST A^2812101000000000000000123456?"

/// A scenario with no impairments at all: the bare physics.
func cleanScenario(
    _ text: String = track2Text, format: TrackFormat = .track2, speed: SpeedProfile = .constant(300),
    direction: SwipeDirection = .forward, rate: Int = 44_100
) -> SwipeScenario {
    var audio = AudioPath(sampleRate: rate)
    audio.highPass = nil
    audio.level = -6
    return SwipeScenario(tracks: [try! StripeTrack(text: text, format: format)],
                         motion: Motion(speed: speed, direction: direction), audio: audio, seed: 7)
}

/// Peaks of |x| above `threshold`, located between samples by a parabola through the top three.
func findPeaks(_ x: [Float], threshold: Float) -> [(position: Double, sign: Int)] {
    var peaks: [(Double, Int)] = []
    guard x.count >= 3 else { return [] }
    for i in 1..<(x.count - 1) {
        let a = abs(x[i - 1]), b = abs(x[i]), c = abs(x[i + 1])
        guard b > threshold, b >= a, b > c else { continue }
        let denominator = a - 2 * b + c
        let offset = denominator == 0 ? 0 : 0.5 * Double(a - c) / Double(denominator)
        peaks.append((Double(i) + offset, x[i] > 0 ? 1 : -1))
    }
    return peaks
}

/// Bits from pulse times by plain F2F rules (a reference for the layout, not a decoder): an
/// interval near the running cell length is a 0, two near half of it are a 1.
func bitsFromPulseTimes(_ times: [Double]) -> [UInt8] {
    guard times.count > 2 else { return [] }
    var cell = times[1] - times[0]
    var bits: [UInt8] = []
    var i = 1
    while i < times.count {
        let interval = times[i] - times[i - 1]
        if interval < 0.75 * cell, i + 1 < times.count {
            bits.append(1)
            cell = 0.8 * cell + 0.2 * (times[i + 1] - times[i - 1])
            i += 2
        } else {
            bits.append(0)
            cell = 0.8 * cell + 0.2 * interval
            i += 1
        }
    }
    return bits
}

func rms(_ x: ArraySlice<Float>) -> Double {
    (x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(max(1, x.count))).squareRoot()
}

@Suite("Swipe synthesizer")
struct SwipeSynthTests {
    @Test("every flux transition appears, within a sample of its time",
          arguments: [(TrackFormat.track2, 300.0, 44_100), (.track2, 150, 8_000), (.track1, 200, 44_100),
                      (.track1, 400, 96_000), (.track2, 1_000, 192_000)],
          SwipeDirection.allCases)
    func transitionsAtTheRightTimes(setup: (TrackFormat, Double, Int), direction: SwipeDirection) {
        let (format, speed, rate) = setup
        let text = format == .track1 ? track1Text : track2Text
        let swipe = SwipeSynthesizer.render(cleanScenario(text, format: format, speed: .constant(speed),
                                                          direction: direction, rate: rate))
        let truth = swipe.tracks[0].pulses
        // One transition per cell boundary plus one per 1 bit.
        let bits = swipe.tracks[0].bits
        #expect(truth.count == bits.count + 1 + bits.reduce(0) { $0 + Int($1) })
        let peaks = findPeaks(swipe.channels[0], threshold: Float(swipe.pulsePeak) * 0.4)
        #expect(peaks.count == truth.count)
        guard peaks.count == truth.count else { return }
        var worst = 0.0
        for (peak, pulse) in zip(peaks, truth) {
            worst = max(worst, abs(peak.position - pulse.time * Double(rate)))
            #expect(peak.sign == Int(pulse.polarity))
        }
        #expect(worst < 1.0, "worst timing error \(worst) samples")
    }

    @Test("the pulse times carry the card's bits, in swipe order", arguments: SwipeDirection.allCases)
    func pulseTimesCarryTheBits(direction: SwipeDirection) throws {
        for (format, text) in [(TrackFormat.track2, track2Text), (.track1, track1Text)] {
            let swipe = SwipeSynthesizer.render(cleanScenario(text, format: format, direction: direction))
            let bits = bitsFromPulseTimes(swipe.tracks[0].pulses.map(\.time))
            #expect(bits == swipe.tracks[0].bits)
            let read = try TrackDecoding.decode(bits, format: format, direction: direction).get()
            #expect(read.text == text)
        }
    }

    @Test("a reverse swipe mirrors the forward one in time")
    func reverseMirrors() {
        let forward = SwipeSynthesizer.render(cleanScenario(direction: .forward))
        let reverse = SwipeSynthesizer.render(cleanScenario(direction: .reverse))
        #expect(reverse.tracks[0].bits == forward.tracks[0].bits.reversed())
        let f = forward.tracks[0].pulses.map(\.time)
        let r = reverse.tracks[0].pulses.map(\.time)
        #expect(f.count == r.count)
        // At constant speed t_forward(x) + t_reverse(x) is the same for every transition x.
        let sums = zip(f, r.reversed()).map { $0 + $1 }
        #expect(sums.max()! - sums.min()! < 2e-5)
    }

    @Test("constant speed: the swipe lasts the stripe's length over the speed")
    func durationFollowsSpeed() {
        for speed in [50.0, 200, 1_500] {
            let swipe = SwipeSynthesizer.render(cleanScenario(speed: .constant(speed)))
            let bits = Double(swipe.tracks[0].bits.count)
            let expected = bits * TrackFormat.track2.cellLengthMillimetres / speed
            #expect(abs((swipe.swipeEnd - swipe.swipeStart) / expected - 1) < 1e-3)
            #expect(abs(swipe.speedRange.lowerBound - speed) < 1e-6 && abs(swipe.speedRange.upperBound - speed) < 1e-6)
        }
    }

    @Test("speed profiles: the cells shrink as the card speeds up, over the declared range")
    func speedProfiles() {
        let accelerating = SwipeSynthesizer.render(cleanScenario(speed: .accelerating(from: 100, to: 400)))
        let p = accelerating.tracks[0].pulses
        let cell = TrackFormat.track2.cellLengthMillimetres
        // Clocking zeros at both ends: each interval is one cell at the speed of that moment.
        for k in [2, 3, p.count - 2, p.count - 1] {
            let speed = (p[k].speed + p[k - 1].speed) / 2
            #expect(abs((p[k].time - p[k - 1].time) * speed / cell - 1) < 0.01)
        }
        #expect(p.last!.speed / p.first!.speed > 3.7)
        // The stripe starts and ends just inside the card edges, so its range is just inside 100-400.
        #expect(accelerating.speedRange.lowerBound >= 100 && accelerating.speedRange.lowerBound < 110)
        #expect(accelerating.speedRange.upperBound <= 400 && accelerating.speedRange.upperBound > 395)

        let decelerating = SwipeSynthesizer.render(cleanScenario(speed: .decelerating(from: 400, to: 100)))
        let d = decelerating.tracks[0].pulses.map(\.time)
        #expect((d[4] - d[2]) < (d[d.count - 1] - d[d.count - 3]))

        let hand = SwipeSynthesizer.render(cleanScenario(speed: .riseAndFall(slowest: 80, fastest: 320)))
        let h = hand.tracks[0].pulses
        let middle = h[h.count / 2].speed
        #expect(middle > 300 && h.first!.speed < 90 && h.last!.speed < 90)

        let jerky = SwipeSynthesizer.render(cleanScenario(speed: .jerky(mean: 200, ratio: 4, changes: 6)))
        #expect(abs(jerky.speedRange.upperBound / jerky.speedRange.lowerBound - 4) < 0.3)
        let again = SwipeSynthesizer.render(cleanScenario(speed: .jerky(mean: 200, ratio: 4, changes: 6)))
        #expect(again.channels == jerky.channels)
        #expect(SpeedProfile.jerky(mean: 200, ratio: 4, changes: 6).ratio == 4)
    }

    @Test("the same seed renders the same samples; another seed other noise")
    func determinism() {
        var scenario = cleanScenario()
        scenario.audio.snr = 20
        scenario.audio.hum = Hum()
        let a = SwipeSynthesizer.render(scenario)
        let b = SwipeSynthesizer.render(scenario)
        #expect(a.channels == b.channels)
        scenario.seed = 8
        let c = SwipeSynthesizer.render(scenario)
        #expect(a.channels != c.channels)
    }

    @Test("level and SNR: median pulse peak at the level, noise RMS at peak over SNR")
    func levelAndNoise() {
        var scenario = cleanScenario()
        scenario.audio.level = -12
        scenario.audio.leadingSilence = 0.3
        let clean = SwipeSynthesizer.render(scenario)
        let peaks = findPeaks(clean.channels[0], threshold: 0.05).map { abs(clean.channels[0][Int($0.position.rounded())]) }
        let median = Double(peaks.sorted()[peaks.count / 2])
        #expect(abs(median / 0.2512 - 1) < 0.03)    // -12 dBFS

        scenario.audio.snr = 20
        let noisy = SwipeSynthesizer.render(scenario)
        let silence = noisy.channels[0][0..<Int(0.25 * 44_100)]
        let measured = rms(silence)
        #expect(abs(measured / (0.2512 / 10) - 1) < 0.05)
        #expect(abs(noisy.noiseRMS / (0.2512 / 10) - 1) < 1e-3)
    }

    @Test("the AC-coupling high-pass makes the baseline droop after each pulse")
    func highPassDroop() {
        var scenario = cleanScenario(speed: .constant(60))        // slow: long gaps between pulses
        let plain = SwipeSynthesizer.render(scenario)
        scenario.audio.highPass = 500
        let coupled = SwipeSynthesizer.render(scenario)
        let pulses = plain.tracks[0].pulses
        var droop = 0.0
        for k in 1..<pulses.count {
            let mid = Int(((pulses[k - 1].time + pulses[k].time) / 2 * 44_100).rounded())
            droop += Double(coupled.channels[0][mid] - plain.channels[0][mid]) * Double(pulses[k - 1].polarity)
        }
        droop /= Double(pulses.count - 1)
        #expect(droop < -0.05 * plain.pulsePeak)
    }

    @Test("clipping holds samples at the clip level; DC offset shifts the baseline")
    func clippingAndOffset() {
        var scenario = cleanScenario()
        scenario.audio.level = 6                 // 6 dB over full scale
        scenario.audio.clipLevel = 0.9
        scenario.audio.dcOffset = 0.05
        scenario.audio.leadingSilence = 0.1
        let swipe = SwipeSynthesizer.render(scenario)
        let x = swipe.channels[0]
        let top = x.map { abs($0) }.max()!
        #expect(abs(top - 0.9) < 1e-4)
        #expect(x.filter { abs($0) >= 0.8999 }.count > 50)
        let baseline = x[0..<2_000].reduce(0, +) / 2_000
        #expect(abs(baseline - 0.05) < 1e-3)
    }

    @Test("hum at its frequency and level")
    func hum() {
        var scenario = cleanScenario()
        scenario.audio.hum = Hum(frequency: 60, level: -6, harmonics: 1)
        scenario.audio.leadingSilence = 0.5
        let swipe = SwipeSynthesizer.render(scenario)
        let n = Int(0.45 * 44_100)
        var re = 0.0, im = 0.0
        for i in 0..<n {
            let phase = 2 * Double.pi * 60 * Double(i) / 44_100
            re += Double(swipe.channels[0][i]) * _cosine(phase)
            im += Double(swipe.channels[0][i]) * _sine(phase)
        }
        let amplitude = 2 * (re * re + im * im).squareRoot() / Double(n)
        #expect(abs(amplitude / (swipe.pulsePeak * 0.5012) - 1) < 0.03)
    }

    @Test("gain drift swings the pulse peaks by its depth")
    func gainDrift() {
        var scenario = cleanScenario(speed: .constant(100))
        scenario.audio.gainDrift = GainDrift(depth: 12, period: 0.3)
        let swipe = SwipeSynthesizer.render(scenario)
        let peaks = swipe.tracks[0].pulses.map { abs(swipe.channels[0][Int(($0.time * 44_100).rounded())]) }
        let swing = Double(peaks.max()! / peaks.min()!)
        #expect(swing > 3.0 && swing < 4.8)      // 12 dB ≈ 4×, less the sampling of the peaks
    }

    @Test("clicks appear at their level in silence")
    func clicks() {
        var scenario = cleanScenario()
        scenario.audio.leadingSilence = 2
        scenario.audio.clicks = Clicks(perSecond: 10, level: 0)
        let swipe = SwipeSynthesizer.render(scenario)
        let silence = swipe.channels[0][0..<Int(1.9 * 44_100)]
        let spikes = findPeaks(Array(silence), threshold: Float(swipe.pulsePeak) * 0.5)
        #expect(spikes.count >= 8 && spikes.count <= 35)
        #expect(silence.map { abs($0) }.max()! > Float(swipe.pulsePeak) * 0.9)
    }

    @Test("samples sit on the 16-bit grid and survive a WAV round trip")
    func quantisedAndWAV() throws {
        var scenario = cleanScenario()
        scenario.audio.snr = 30
        let swipe = SwipeSynthesizer.render(scenario)
        #expect(swipe.channels[0].allSatisfy { ($0 * 32_768).rounded() == $0 * 32_768 })
        let audio = PCMAudio(sampleRate: swipe.sampleRate, channels: swipe.channels)
        #expect(try WAV.decode(WAV.encode16(audio)) == audio)
    }

    @Test("every rate from 8 to 192 kHz renders the same swipe length", arguments: [8_000, 16_000, 22_050, 48_000, 192_000])
    func rates(rate: Int) {
        let swipe = SwipeSynthesizer.render(cleanScenario(speed: .constant(500), rate: rate))
        let reference = SwipeSynthesizer.render(cleanScenario(speed: .constant(500), rate: 44_100))
        #expect(abs(swipe.duration - reference.duration) < 2.0 / Double(rate) + 1.0 / 44_100)
        #expect(swipe.frameCount == Int((swipe.duration * Double(rate)).rounded()))
    }

    @Test("a two-head reader renders one channel per track, on one clock")
    func twoHeads() throws {
        var scenario = cleanScenario()
        scenario.tracks = [try StripeTrack(text: track1Text, format: .track1), try StripeTrack(text: track2Text, format: .track2)]
        let swipe = SwipeSynthesizer.render(scenario)
        #expect(swipe.channels.count == 2)
        #expect(swipe.channels[0].count == swipe.channels[1].count)
        #expect(swipe.tracks[0].pulses.count > 2 * swipe.tracks[1].pulses.count)
        #expect(abs(swipe.tracks[0].pulses.first!.time - swipe.tracks[1].pulses.first!.time) < 1e-3)
    }

    @Test("a card pulled back half-way shows only the first half of the stripe")
    func partialTravel() {
        var scenario = cleanScenario()
        scenario.motion.travel = 0...0.5
        let half = SwipeSynthesizer.render(scenario)
        let whole = SwipeSynthesizer.render(cleanScenario())
        let ratio = Double(half.tracks[0].pulses.count) / Double(whole.tracks[0].pulses.count)
        #expect(ratio > 0.35 && ratio < 0.65)
        let bits = bitsFromPulseTimes(half.tracks[0].pulses.map(\.time))
        #expect(throws: TrackReadError.self) { try TrackDecoding.decode(bits, format: .track2).get() }
    }

    @Test("jitter and density error move the transitions, as asked")
    func jitterAndDensity() throws {
        var scenario = cleanScenario(speed: .constant(200))
        scenario.tracks[0].densityError = 0.05
        let dense = SwipeSynthesizer.render(scenario)
        let nominal = SwipeSynthesizer.render(cleanScenario(speed: .constant(200)))
        let ratio = (dense.swipeEnd - dense.swipeStart) / (nominal.swipeEnd - nominal.swipeStart)
        #expect(abs(ratio - 1 / 1.05) < 2e-3)

        scenario.tracks[0].densityError = 0
        scenario.tracks[0].jitter = 0.04
        let jittered = SwipeSynthesizer.render(scenario)
        let cell = TrackFormat.track2.cellLengthMillimetres / 200
        let deviations = zip(jittered.tracks[0].pulses, nominal.tracks[0].pulses).map { ($0.time - $1.time) / cell }
        let sd = (deviations.reduce(0) { $0 + $1 * $1 } / Double(deviations.count)).squareRoot()
        #expect(abs(sd - 0.04) < 0.008)
    }

    @Test("arbitrary bit strings render (damaged or non-ISO stripes)")
    func arbitraryBits() {
        var rng = SynthRandom(seed: 3)
        let bits = (0..<400).map { _ in UInt8(rng.next() & 1) }
        var scenario = cleanScenario()
        scenario.tracks = [StripeTrack(bits: bits, format: .track1)]
        let swipe = SwipeSynthesizer.render(scenario)
        #expect(bitsFromPulseTimes(swipe.tracks[0].pulses.map(\.time)) == bits)
    }
}

#if canImport(Glibc)
import Glibc
#endif
func _cosine(_ x: Double) -> Double { cos(x) }
func _sine(_ x: Double) -> Double { sin(x) }
