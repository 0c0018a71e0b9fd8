import Testing
import Magstripe
import SwipeSynth
import SwipeDecoder
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// `decidedAt`: where in the stream a swipe's result was decided, against where the synthesizer
/// really ended it. Audio time, so the figure does not depend on the machine's pace.
@Suite("Swipe decoder: when a result is decided")
struct DecidedAtTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var format: TrackFormat
        var direction: SwipeDirection
        var speed: Double
        var testDescription: String { "\(format) \(direction) \(Int(speed / 10)) cm/s" }
    }

    static let cases: [Case] = [TrackFormat.track1, .track2].flatMap { format in
        SwipeDirection.allCases.flatMap { direction in [100.0, 400, 1_000].map { Case(format: format, direction: direction, speed: $0) } }
    }

    /// A swipe of the test card over the reader's noise (pulse peak 30 dB over it), with `lead`
    /// and `trail` seconds of that noise around it.
    static func render(_ format: TrackFormat, speed: Double, direction: SwipeDirection = .forward,
                       lead: Double, trail: Double, seed: UInt64) throws -> SynthesizedSwipe {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 30
        audio.level = -14
        audio.leadingSilence = lead
        audio.trailingSilence = trail
        return SwipeSynthesizer.render(SwipeScenario(tracks: [try StripeTrack(text: text(format), format: format)],
                                                     motion: Motion(speed: .constant(speed), direction: direction),
                                                     audio: audio, seed: seed))
    }

    /// The swipes decided while `samples` are pushed in 10 ms periods, as a capture delivers
    /// them; nothing from `finish()` counts.
    static func decidedInPeriods(_ samples: [Float]) throws -> [Swipe] {
        let decoder = try SwipeDecoder(sampleRate: 44_100)
        var swipes: [Swipe] = []
        var at = 0
        while at < samples.count {
            let end = min(samples.count, at + 441)
            swipes += decoder.push(Array(samples[at..<end]))
            at = end
        }
        return swipes
    }

    @Test("steady noise, then a swipe, then a second of the same noise: decided within 50 ms of audio after the swipe's last transition, never before it",
          arguments: cases)
    func steadyInput(_ c: Case) throws {
        let truth = try Self.render(c.format, speed: c.speed, direction: c.direction, lead: 0.5, trail: 1, seed: 5)
        let swipes = try Self.decidedInPeriods(truth.channels[0])
        let swipe = try #require(swipes.first, "not decided before the input ended")
        #expect(swipe.readTracks.count == 1)
        let decided = try #require(swipe.decidedAt)
        let latency = Double(decided) / 44_100 - truth.swipeEnd
        print("decided_at \(c): \((latency * 1000).rounded()) ms of audio after the swipe's last pulse")
        #expect(latency >= 0, "decided \(latency * 1000) ms before the swipe ended")
        #expect(latency <= 0.050, "decided \(latency * 1000) ms after the swipe ended")
    }

    @Test("a swipe still open when the input ends is decided at the end of the input")
    func endOfInput() throws {
        var audio = AudioPath(sampleRate: 44_100)
        audio.snr = 30
        audio.level = -14
        audio.trailingSilence = 0.005
        let truth = SwipeSynthesizer.render(SwipeScenario(tracks: [try StripeTrack(text: text(.track2), format: .track2)],
                                                          motion: Motion(speed: .constant(400)), audio: audio, seed: 6))
        let decoder = try SwipeDecoder(sampleRate: 44_100)
        let early = decoder.push(truth.channels[0])
        #expect(early.isEmpty, "decided before the swipe's end had been heard out")
        let swipe = try #require(decoder.finish().first)
        // The last partial block is completed before the close.
        let decided = try #require(swipe.decidedAt)
        #expect(decided >= Int64(truth.frameCount) && decided < Int64(truth.frameCount + decoder.blockSize))
    }
}

/// The input's level changes shortly before a swipe: the gate must follow it, and the swipe be
/// decided as soon after its end as on steady input.
@Suite("Swipe decoder: a swipe right after a level change")
struct LevelChangeTests {
    typealias Change = LevelChange

    struct Case: Sendable, CustomTestStringConvertible {
        var change: Change
        var format: TrackFormat
        var speed: Double
        var testDescription: String { "\(change.rawValue) \(format) \(Int(speed / 10)) cm/s" }
    }

    static let cases: [Case] = Change.allCases.flatMap { change in
        [Case(change: change, format: .track2, speed: 400), Case(change: change, format: .track1, speed: 400),
         Case(change: change, format: .track2, speed: 50)]
    }

    /// A swipe with 0.8 s of the reader's noise before it and 1 s after; the change is made
    /// 0.3 s before the swipe's first pulse.
    static func render(_ c: Case) throws -> (samples: [Float], swipeEnd: Double) {
        let truth = try DecidedAtTests.render(c.format, speed: c.speed, lead: 0.8, trail: 1, seed: 8)
        var samples = truth.channels[0]
        c.change.apply(to: &samples, at: Int((truth.swipeStart - 0.3) * 44_100), sampleRate: 44_100)
        return (samples, truth.swipeEnd)
    }

    @Test("digital silence, a 30 dB step up or down, a plug click: a swipe 0.3 s later reads, decided within 50 ms of audio after its end",
          arguments: cases)
    func decidedSoon(_ c: Case) throws {
        let (samples, swipeEnd) = try Self.render(c)
        let swipes = try DecidedAtTests.decidedInPeriods(samples)
        let read = swipes.filter { !$0.readTracks.isEmpty }
        #expect(read.count == 1, "\(read.count) reads among \(swipes.count) results before the input ended")
        // The level change itself (the step, the click) gives no swipe object.
        #expect(swipes.count == 1, "phantom swipes: \(swipes.filter { $0.readTracks.isEmpty }.map { $0.problem?.rawValue ?? "-" })")
        let swipe = try #require(read.first)
        #expect(swipe.readTracks.first?.text?.revealed() == text(c.format))
        let decided = try #require(swipe.decidedAt)
        let latency = Double(decided) / 44_100 - swipeEnd
        print("level change \(c.testDescription): decided \((latency * 1000).rounded()) ms after the swipe's end, SNR \(swipe.quality.snrDB.rounded()) dB")
        if c.change == .silenceThenNoise || c.change == .stepUp30dB {
            // Where the level rose, the SNR is measured against the noise the swipe stood on (the
            // synthesizer's 30 dB), not the level before the change (digital silence gave 43 dB).
            #expect(abs(swipe.quality.snrDB - 30) <= 3)
        }
        #expect(latency >= 0 && latency <= 0.050, "decided \(latency * 1000) ms after the swipe's end")
    }
}

/// The same, on a world the synthesizer did not make: a real head recording (its own noise is
/// quiet, low-pass and far from Gaussian) after half a second of digital silence, as when the
/// capture was opened before the reader was plugged in.
@Suite("Swipe decoder: a real recording after digital silence")
struct SplicedRecordingTests {
    @Test("digital silence, then a real recording's own noise and swipe: the same bits, decided within 50 ms of audio after its last transition",
          arguments: ["metrocard-ezpay-44k1"])
    func splicedAfterSilence(name: String) throws {
        let wav = try #require(readFile(testsDirectory + "/Recordings/metrocard/" + name + ".wav"))
        let audio = try WAV.decode(wav)
        #expect(audio.sampleRate == 44_100)
        let recording = audio.channels[0]
        // Where the swipe's transitions are, from the recording decoded on its own.
        var configuration = DecoderConfiguration()
        configuration.keepTimeline = true
        let whole = try SwipeDecoder(sampleRate: 44_100, configuration: configuration)
        let alone = (whole.push(recording) + whole.finish()).filter { !$0.bits.isEmpty }
        let reference = try #require(alone.first)
        let lastTransition = try #require(reference.timeline?.transitions.last)

        let silence = 22_050
        let samples = [Float](repeating: 0, count: silence) + recording
        let swipes = try DecidedAtTests.decidedInPeriods(samples)
        let found = swipes.filter { !$0.bits.isEmpty }
        #expect(found.count == 1, "\(found.count) swipes with bits among \(swipes.count) results before the input ended")
        let swipe = try #require(found.first)
        #expect(swipe.bits == reference.bits)
        let decided = try #require(swipe.decidedAt)
        let latency = Double(decided) / 44_100 - (Double(silence) / 44_100 + lastTransition)
        print("spliced \(name): decided \((latency * 1000).rounded()) ms after the last transition")
        #expect(latency >= 0 && latency <= 0.050, "decided \(latency * 1000) ms after the last transition")
    }
}
