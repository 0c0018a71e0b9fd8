import Testing
import Magstripe
import SwipeSynth
import SwipeDecoder
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// The line between a noise burst (no swipe object, counted) and a swipe a person made that
/// failed (a swipe object with its problem), tested from both sides.
@Suite("Swipe decoder: noise bursts give no swipe, a person's failed swipe does")
struct NoiseBurstTests {
    /// Uniform noise from a fixed seed (the test must not depend on the run).
    static func noise(_ count: Int, rms: Float, seed: UInt64) -> [Float] {
        var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return (0..<count).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * rms * 1.732
        }
    }

    static func decodeInPeriods(_ samples: [Float]) throws -> (swipes: [Swipe], bursts: [NoiseBurst], count: Int) {
        let decoder = try SwipeDecoder(sampleRate: 44_100)
        var swipes: [Swipe] = [], bursts: [NoiseBurst] = []
        var at = 0
        while at < samples.count {
            let end = min(samples.count, at + 441)
            swipes += decoder.push(Array(samples[at..<end]))
            bursts += decoder.takeNoiseBursts()
            at = end
        }
        swipes += decoder.finish()
        bursts += decoder.takeNoiseBursts()
        return (swipes, bursts, decoder.noiseBursts)
    }

    enum Burst: String, Sendable, CaseIterable {
        case ringing2k, ringing5k, ringing9k, slowRinging1k4, slowRinging2k5, knock, levelStep, plugClick
    }

    /// Half a second of the reader's noise with the burst at 0.45 s.
    static func render(_ burst: Burst) -> [Float] {
        var x = noise(44_100, rms: 0.003, seed: 1)
        func ring(omega: Double, decay: Double, length: Int) {
            for k in 0..<length { x[20_000 + k] += Float(exp(-Double(k) / decay) * sin(Double(k) * omega)) * 0.9 }
        }
        switch burst {
        case .ringing2k: ring(omega: 0.35, decay: 40, length: 2_000)
        case .ringing5k: ring(omega: 0.8, decay: 20, length: 2_000)
        case .ringing9k: ring(omega: 1.5, decay: 10, length: 2_000)
        case .slowRinging1k4: ring(omega: 0.2, decay: 300, length: 4_000)
        case .slowRinging2k5: ring(omega: 0.35, decay: 400, length: 4_000)
        case .knock:
            // A thump on the reader: a 5 ms half-sine and its slow return.
            for k in 0..<4_000 {
                x[20_000 + k] += Float(k < 220 ? 0.5 * sin(Double.pi * Double(k) / 220) : -0.05 * exp(-Double(k - 220) / 800))
            }
        case .levelStep:
            // The input's DC level steps and an AC coupling lets it back down.
            for k in 20_000..<x.count { x[k] += Float(0.3 * exp(-Double(k - 20_000) / 2_000)) }
        case .plugClick:
            // LevelChangeTests' click: a few ms of decaying full-scale ringing.
            for k in 0..<176 { x[20_000 + k] = Float(exp(-Double(k) / 40) * sin(Double(k) * 0.35)) }
        }
        return x
    }

    @Test("clicks that ring down, a knock, a level step: no swipe object, counted as noise bursts",
          arguments: Burst.allCases)
    func noiseGivesNoSwipe(_ burst: Burst) throws {
        let (swipes, bursts, count) = try Self.decodeInPeriods(Self.render(burst))
        #expect(swipes.isEmpty, "\(swipes.map { "\($0.problem?.rawValue ?? "read")" })")
        #expect(count >= 1 && count == bursts.count)
        for b in bursts { print("\(burst.rawValue): \(b)") }
    }

    @Test("a steady tone is a noise burst (tone), however long it lasts", arguments: [1_000.0, 2_500, 4_000])
    func toneGivesNoSwipe(_ frequency: Double) throws {
        // 0.2 s of the reader's noise, then 0.7 s of the tone: 1 400 to 5 600 cells of one bit.
        var x = Self.noise(44_100, rms: 0.003, seed: 2)
        for k in 0..<30_870 { x[8_820 + k] += Float(0.2 * sin(2 * .pi * frequency * Double(k) / 44_100)) }
        let (swipes, bursts, count) = try Self.decodeInPeriods(x)
        #expect(swipes.isEmpty, "\(swipes.map { "\($0.problem?.rawValue ?? "read") \($0.bits.count) bits" })")
        #expect(count >= 1 && bursts.contains { $0.reason == .tone }, "\(bursts)")
    }

    @Test("a blank but clocked stripe (zeros from edge to edge) is still a swipe, in either direction",
          arguments: [TrackFormat.track1, .track2], [SwipeDirection.forward, .reverse])
    func blankStripeIsASwipe(_ format: TrackFormat, _ direction: SwipeDirection) throws {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 30
        audio.level = -14
        audio.leadingSilence = 0.3
        audio.trailingSilence = 0.3
        let cells = Int(85.6 / (format == .track2 ? 0.3387 : 0.121))     // 708 or 252
        let truth = SwipeSynthesizer.render(SwipeScenario(
            tracks: [StripeTrack(bits: [UInt8](repeating: 0, count: cells), format: format)],
            motion: Motion(speed: .constant(600), direction: direction), audio: audio, seed: 5))
        let (swipes, bursts, _) = try Self.decodeInPeriods(truth.channels[0])
        #expect(bursts.allSatisfy { $0.reason != .tone }, "\(bursts)")
        let swipe = try #require(swipes.first)
        #expect(swipes.count == 1 && swipe.readTracks.isEmpty && swipe.problem != nil)
    }

    struct Person: Sendable, CustomTestStringConvertible {
        var label: String
        var format: TrackFormat
        var speed: Double
        var travel: ClosedRange<Double>
        var testDescription: String { "\(label) \(format) \(Int(speed / 10)) cm/s" }
    }

    /// Pulled back after 40 cells, cut short at half the card, too fast for the rate.
    static let people: [Person] = [TrackFormat.track1, .track2, .track3].flatMap { format -> [Person] in
        let cell = format == .track2 ? 0.3387 : 0.121
        let pulledBack = 0...(40 * cell / 85.6)
        return [100.0, 400, 1_500].flatMap { speed in
            [Person(label: "pulled back after 40 cells", format: format, speed: speed, travel: pulledBack),
             Person(label: "cut short at half", format: format, speed: speed, travel: 0...0.5)]
        } + (format == .track2 ? [] : [Person(label: "too fast", format: format, speed: 2_500, travel: 0...1)])
    }

    @Test("what a person did with a card still gives a failed swipe with its reason", arguments: people)
    func personGetsFailedSwipe(_ p: Person) throws {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 30
        audio.level = -14
        audio.leadingSilence = 0.3
        audio.trailingSilence = 0.3
        let truth = SwipeSynthesizer.render(SwipeScenario(
            tracks: [try StripeTrack(text: text(p.format), format: p.format)],
            motion: Motion(speed: .constant(p.speed), travel: p.travel), audio: audio, seed: 3))
        let (swipes, _, count) = try Self.decodeInPeriods(truth.channels[0])
        #expect(count == 0)
        let swipe = try #require(swipes.first)
        #expect(swipes.count == 1)
        #expect(swipe.readTracks.isEmpty)
        #expect(swipe.problem != nil)
        if p.label == "too fast" { #expect(swipe.problem == .tooFast) }
    }

    @Test("a stripe that is not an ISO track (a real MetroCard recording) is a swipe, not noise")
    func metroCardIsASwipe() throws {
        let wav = try #require(readFile(testsDirectory + "/Recordings/metrocard/metrocard-ezpay-44k1.wav"))
        let audio = try WAV.decode(wav)
        let (swipes, bursts, _) = try Self.decodeInPeriods(audio.channels[0])
        // Its own spiky noise may open the gate on nothing (`noSwipe`); nothing with a clock is
        // judged noise.
        #expect(bursts.allSatisfy { $0.reason == .noSwipe }, "\(bursts)")
        #expect(swipes.count == 1)
        let swipe = try #require(swipes.first)
        #expect(swipe.problem != nil && swipe.readTracks.isEmpty)
        #expect(swipe.bits.count > 200)
    }
}
