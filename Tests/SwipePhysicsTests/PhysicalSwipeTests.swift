import Testing
import Magstripe
import SwipeDecoder
import SwipePhysics
import TestSupport

/// The second swipe model on its own terms, and the decoder on its clean swipes (its hard
/// region is `make bench`'s business).
@Suite("second swipe model (SwipePhysics)")
struct PhysicalSwipeTests {
    static let track2 = track2Text
    static let track1 = track1Text

    static func decode(_ samples: [Float], rate: Int) throws -> [Swipe] {
        let decoder = try SwipeDecoder(sampleRate: rate)
        return decoder.push(samples) + decoder.finish()
    }

    @Test("the same swipe renders the same samples; another seed, other noise")
    func deterministic() {
        let s = PhysicalSwipe(text: Self.track2, format: .track2, snr: 25, seed: 5)
        #expect(PhysicalRenderer.render(s) == PhysicalRenderer.render(s))
        var other = s
        other.seed = 6
        #expect(PhysicalRenderer.render(s) != PhysicalRenderer.render(other))
    }

    @Test("level: the median pulse peak sits at the drive; past full scale it is clipped at full scale")
    func level() {
        let quiet = PhysicalRenderer.render(PhysicalSwipe(text: Self.track2, format: .track2, snr: 60, drive: -12))
        let peak = quiet.map { abs($0) }.max() ?? 0
        #expect(peak > 0.2 && peak < 0.5, "-12 dB median peak, the loudest a little above: \(peak)")
        let loud = PhysicalRenderer.render(PhysicalSwipe(text: Self.track2, format: .track2, snr: 60, drive: 8))
        let atFullScale = loud.filter { abs($0) >= 0.99 }.count
        #expect(atFullScale > 100, "driven 8 dB past full scale: \(atFullScale) samples clipped")
        #expect(loud.allSatisfy { abs($0) <= 1 })
    }

    @Test("timing: a 30 cm/s swipe lasts the card's length over its speed; trimmed, nothing before or after")
    func timing() {
        let s = PhysicalSwipe(text: Self.track2, format: .track2, sampleRate: 44_100, speedKnots: [30], snr: 40)
        let whole = PhysicalRenderer.render(s)
        let seconds = Double(whole.count) / 44_100
        #expect(seconds > 0.28 + 0.16 && seconds < 0.29 + 0.36, "\(seconds) s")
        var trimmed = s
        trimmed.trimmed = true
        let tight = Double(PhysicalRenderer.render(trimmed).count) / 44_100
        #expect(tight > 0.27 && tight < 0.29, "\(tight) s: the encoded region alone (83.6 mm at 30 cm/s)")
        #expect(abs(s.samplesPerHalfCellAtFastest - 44_100 / (2 * 75 / 25.4 * 300)) < 1e-9)
    }

    @Test("clean swipes of the second model read, every track, both directions, both pulse shapes",
          arguments: [TrackFormat.track1, .track2, .track3], [SwipeDirection.forward, .reverse])
    func cleanReads(format: TrackFormat, direction: SwipeDirection) throws {
        let text = switch format {
        case .track1: Self.track1
        case .track2: Self.track2
        case .track3: track3Text
        }
        for pulse in [PhysicalSwipe.Pulse.inductive(undershoot: 0.25), .gaussian] {
            let s = PhysicalSwipe(text: text, format: format, direction: direction, speedKnots: [25, 40], pulse: pulse,
                                  snr: 35, seed: 11)
            let read = try Self.decode(PhysicalRenderer.render(s), rate: s.sampleRate).flatMap(\.readTracks)
            #expect(read.contains { $0.text?.revealed() == text }, "\(format) \(direction) \(pulse)")
            #expect(read.allSatisfy { $0.text?.revealed() == text }, "nothing but the card")
        }
    }

    @Test("noise alone (a swipe at -10 dB SNR) never reads")
    func buriedNeverReads() throws {
        let s = PhysicalSwipe(text: Self.track2, format: .track2, snr: -10, seed: 3)
        #expect(try Self.decode(PhysicalRenderer.render(s), rate: s.sampleRate).flatMap(\.readTracks).isEmpty)
    }
}
