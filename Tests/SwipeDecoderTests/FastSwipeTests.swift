import Testing
import Magstripe
import SwipeSynth
import Secrets
@testable import SwipeDecoder

/// Issue 24: swipes near and below two samples per half-cell (at 44.1 kHz, Track 1 and Track 3
/// at 210 bpi pass two samples per half-cell at 132 cm/s).
@Suite("Fast swipes: below two samples per half-cell")
struct FastSwipeTests {
    /// The speed (mm/s) that gives `samplesPerHalfCell` at `rate` on `format`.
    static func speed(_ format: TrackFormat, samplesPerHalfCell: Double, rate: Int = 44_100) -> Double {
        Double(rate) / (2 * format.bitsPerMillimetre * samplesPerHalfCell)
    }

    static func fast(_ format: TrackFormat, samplesPerHalfCell: Double, direction: SwipeDirection = .forward,
                     snr: Double = 30, seed: UInt64 = 24, bits: (inout [UInt8]) -> Void = { _ in }) throws -> (String, [Swipe]) {
        var s = scenario(format, speed: .constant(speed(format, samplesPerHalfCell: samplesPerHalfCell)), direction: direction,
                         snr: snr, seed: seed)
        bits(&s.tracks[0].bits)
        let (_, swipes) = decode(s)
        return (text(format), swipes)
    }

    @Test("must read at 1.7 samples per half-cell: Track 1 forward, Track 3 reversed")
    func mustRead() throws {
        let (t1, forward) = try Self.fast(.track1, samplesPerHalfCell: 1.7)
        #expect(okTexts(forward) == [t1])
        let (t3, reversed) = try Self.fast(.track3, samplesPerHalfCell: 1.7, direction: .reverse, seed: 25)
        #expect(okTexts(reversed) == [t3])
        #expect(reversed.first?.direction == .reverse)
    }

    @Test("must not read at 1.7 samples per half-cell: two bits flipped on the stripe, a bit dropped (a clock slip), noise")
    func mustNotRead() throws {
        for seed in UInt64(30)..<UInt64(34) {
            let (_, flipped) = try Self.fast(.track1, samplesPerHalfCell: 1.7, seed: seed) { bits in
                let first = bits.firstIndex(of: 1)!
                bits[first + 60] ^= 1
                bits[first + 200] ^= 1
            }
            #expect(okTexts(flipped).isEmpty, "two bit errors, seed \(seed)")
            let (_, slipped) = try Self.fast(.track3, samplesPerHalfCell: 1.7, seed: seed) { bits in
                let first = bits.firstIndex(of: 1)!
                bits.remove(at: first + 120)
            }
            #expect(okTexts(slipped).isEmpty, "a clock slip, seed \(seed)")
        }
        var r = SynthRandom(seed: 9)
        let noise = (0..<22_050).map { _ in Float(0.2 * r.gaussian()) }
        #expect(okTexts(decode(noise, rate: 44_100)).isEmpty)
    }

    @Test("at 1.25 samples per half-cell the decoder reads through the sequence detector when the picker's settings fail; with two bits flipped or one dropped, nothing reads")
    func throughTheDecoder() throws {
        var bySequence = 0
        for seed in UInt64(40)..<UInt64(46) {
            let (t1, swipes) = try Self.fast(.track1, samplesPerHalfCell: 1.25, seed: seed)
            #expect(okTexts(swipes).allSatisfy { $0 == t1 })
            bySequence += swipes.filter { $0.quality.candidate == SwipeDecoder.sequenceCandidate && !$0.readTracks.isEmpty }.count
            let (_, flipped) = try Self.fast(.track1, samplesPerHalfCell: 1.25, seed: seed) { bits in
                let first = bits.firstIndex(of: 1)!
                bits[first + 90] ^= 1
                bits[first + 300] ^= 1
            }
            #expect(okTexts(flipped).isEmpty, "two bit errors, seed \(seed)")
            let (_, slipped) = try Self.fast(.track1, samplesPerHalfCell: 1.25, seed: seed) { bits in
                bits.remove(at: bits.firstIndex(of: 1)! + 250)
            }
            #expect(okTexts(slipped).isEmpty, "a clock slip, seed \(seed)")
        }
        #expect(bySequence >= 2, "reads by the sequence detector: \(bySequence) of 6")
    }

    @Test("the sequence detector reads a Track 1 swipe at 1.4 samples per half-cell from its samples alone, either direction")
    func sequenceDetector() throws {
        for direction in [SwipeDirection.forward, .reverse] {
            let s = scenario(.track1, speed: .constant(Self.speed(.track1, samplesPerHalfCell: 1.4)), direction: direction, seed: 40)
            let audio = SwipeSynthesizer.render(s).channels[0]
            let attempt = try #require(audio.withUnsafeBufferPointer { SequenceDetector.detect($0) })
            let decoded = TrackDecoding.decodeEitherDirection(attempt.bits, format: .track1)
            guard case .success(let track) = decoded else {
                Issue.record("no Track 1 in the detector's bits (\(direction)): \(decoded)")
                continue
            }
            #expect(track.text.revealed() == text(.track1))
        }
    }
}

@Suite("A second opinion: two front ends, not both corrected")
struct SecondOpinionTests {
    @Test("a read is confirmed by another front end's same text; never by its own front end, nor when both were corrected")
    func confirmations() {
        let text = SecretText(copying: Array(";4111111111111111=28121010000012345678?".utf8))
        let a = CandidateSetting.frontEnds[0], b = CandidateSetting.frontEnds[1]
        var corrected = SecondOpinions()
        let r1 = corrected.confirm(text, by: a, corrected: true)
        #expect(!r1)
        let r2 = corrected.confirm(text, by: a, corrected: false)
        #expect(!r2, "the same front end")
        var both = SecondOpinions()
        let r3 = both.confirm(text, by: a, corrected: true)
        #expect(!r3)
        let r4 = both.confirm(text, by: b, corrected: true)
        #expect(!r4, "two corrections into one text are one opinion")
        let r5 = both.confirm(text, by: nil, corrected: true)
        #expect(!r5, "nor does the sequence detector's third")
        let r6 = both.confirm(text, by: nil, corrected: false)
        #expect(r6, "a clean read from elsewhere confirms")
        var clean = SecondOpinions()
        let r7 = clean.confirm(text, by: a, corrected: false)
        #expect(!r7)
        let r8 = clean.confirm(text, by: b, corrected: true)
        #expect(r8, "a corrected read agreeing with a clean one")
        let other = SecretText(copying: Array(";5555555555554444=30052011234000000000?".utf8))
        let r9 = clean.confirm(other, by: b, corrected: false)
        #expect(!r9, "another text")
    }
}
