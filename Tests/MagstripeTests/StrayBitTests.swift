import Testing
import Magstripe

/// A scratch beside a sentinel: stray one bits in the clocking zeros right before the start
/// sentinel or right after the LRC. The frame is the card when it checks, whatever lies beside.
@Suite("Track decoding: stray bits beside the frame")
struct StrayBitTests {
    static let lead = 30, trail = 40

    /// The track's bits in card order, with ones at `strays` (negative: cells before the start
    /// sentinel; positive: cells after the LRC's last cell, 1 = right after it).
    static func bits(_ format: TrackFormat, strays: [Int]) -> [UInt8] {
        let text = Cards.text(format)
        var bits = try! TrackEncoding.bits(for: text, format: format, leadingZeros: lead, trailingZeros: trail)
        let end = lead + (text.utf8.count + 1) * format.characterWidth
        for s in strays { bits[s < 0 ? lead + s : end - 1 + s] = 1 }
        return bits
    }

    @Test("one stray bit at every distance before the start sentinel and after the LRC, both directions: the track reads, at its own place",
          arguments: TrackFormat.allCases)
    func oneStray(format: TrackFormat) {
        let text = Cards.text(format)
        let w = format.characterWidth
        for offset in Array(-Self.lead..<0) + Array(1...Self.trail) {
            let card = Self.bits(format, strays: [offset])
            for direction in SwipeDirection.allCases {
                let bits = direction == .forward ? card : card.reversed()
                let result = TrackDecoding.decodeEitherDirection(bits, format: format)
                guard case .success(let read) = result else {
                    Issue.record("stray at \(offset), \(direction): \(result)")
                    continue
                }
                let same = read.text == text
                #expect(same && read.direction == direction, "stray at \(offset), \(direction)")
                #expect(read.startBit == Self.lead && read.endBit == Self.lead + (text.utf8.count + 1) * w, "stray at \(offset), \(direction)")
            }
        }
    }

    @Test("two stray bits, on one side or both: the track reads", arguments: TrackFormat.allCases)
    func twoStrays(format: TrackFormat) {
        let text = Cards.text(format)
        for strays in [[-1, -3], [-2, -5], [1, 3], [2, 4], [-1, 1], [-3, 2], [-1, -2, 1, 2]] {
            let card = Self.bits(format, strays: strays)
            for direction in SwipeDirection.allCases {
                let bits = direction == .forward ? card : card.reversed()
                let same = (try? TrackDecoding.decodeEitherDirection(bits, format: format).get())?.text == text
                #expect(same, "strays at \(strays), \(direction)")
            }
        }
    }

    @Test("refused: a stray bit beside a frame whose LRC or parity fails (no correction across a scratch); three strays against the sentinel")
    func refusals() {
        for format in TrackFormat.allCases {
            let w = format.characterWidth
            // A flipped data bit in the PAN's third character, with a stray before the sentinel.
            var damaged = Self.bits(format, strays: [-2])
            damaged[Self.lead + 3 * w + 1] ^= 1
            #expect((try? TrackDecoding.decodeEitherDirection(damaged, format: format).get()) == nil, "\(format): a damaged frame read across a scratch")
            // The LRC spoilt, with a stray after it.
            var badLRC = Self.bits(format, strays: [2])
            let lrc = Self.lead + Cards.text(format).utf8.count * w
            badLRC[lrc] ^= 1
            badLRC[lrc + format.bitsPerCharacter] ^= 1
            #expect((try? TrackDecoding.decodeEitherDirection(badLRC, format: format).get()) == nil, "\(format): a bad LRC read")
            // Three ones packed against the start sentinel look like data, not a scratch.
            let packed = Self.bits(format, strays: [-1, -2, -3])
            #expect((try? TrackDecoding.decode(packed, format: format).get()) == nil, "\(format): three strays taken for clocking zeros")
        }
    }

    @Test("random bits: the search for frames with stray bits beside them adds no frame to 20 000 strings of noise")
    func randomBits() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            return state
        }
        var accepted = 0, strict = 0, onlyAcross = 0
        for k in 0..<20_000 {
            let format = TrackFormat.allCases[k % 3]
            // Clocking zeros with bursts of random bits (noise, a partial swipe), 400 cells.
            var bits = [UInt8](repeating: 0, count: 400)
            var i = Int(next() % 40)
            while i < bits.count {
                let burst = Int(next() % 200)
                for j in i..<min(bits.count, i + burst) { bits[j] = UInt8(next() & 1) }
                i += burst + Int(next() % 30)
            }
            let across = (try? TrackDecoding.decodeEitherDirection(bits, format: format).get()) != nil
            let plain = (try? TrackDecoding.decodeEitherDirection(bits, format: format, acrossStrays: false).get()) != nil
            if across { accepted += 1 }
            if plain { strict += 1 }
            if across && !plain { onlyAcross += 1 }
        }
        // Short frames pass parity and LRC by chance now and then (the swipe decoder's length and
        // confidence rules refuse those); the second search must add none of its own.
        print("random bits: \(accepted) frames with the second search, \(strict) without, \(onlyAcross) found by it alone")
        #expect(onlyAcross == 0)
    }
}
