import Testing
import Magstripe

/// Single-error correction may only ever give back the true text: every single flip inside the
/// characters after the start sentinel is repaired, and no double flip anywhere turns into
/// another text that passes.
@Suite("Single-error correction, exhaustively")
struct CorrectionTests {
    static let lead = 20
    static let trail = 30

    static func cleanBits(_ format: TrackFormat) -> [UInt8] {
        try! TrackEncoding.bits(for: Cards.text(format), format: format, leadingZeros: lead, trailingZeros: trail)
    }

    @Test("every single flip after the start sentinel is corrected, at the right place",
          arguments: TrackFormat.allCases, SwipeDirection.allCases)
    func singleFlips(format: TrackFormat, direction: SwipeDirection) throws {
        let text = Cards.text(format)
        var bits = Self.cleanBits(format)
        let w = format.characterWidth
        let frameStart = Self.lead + w          // first bit after the start sentinel
        let frameEnd = Self.lead + (text.utf8.count + 1) * w
        var corrected = 0
        for i in frameStart..<frameEnd {
            bits[i] ^= 1
            let oriented = direction == .forward ? bits : bits.reversed()
            let read = try TrackDecoding.decode(oriented, format: format, direction: direction).get()
            #expect(read.text == text, "flip at bit \(i)")
            let character = (i - Self.lead) / w
            #expect(read.corrections == [BitCorrection(characterIndex: character, bit: (i - Self.lead) % w)])
            bits[i] ^= 1
            corrected += 1
        }
        #expect(corrected == frameEnd - frameStart)
    }

    @Test("single flips in the start sentinel or the clocking zeros never give other text",
          arguments: TrackFormat.allCases)
    func singleFlipsOutsideFrame(format: TrackFormat) {
        let text = Cards.text(format)
        var bits = Self.cleanBits(format)
        let w = format.characterWidth
        let outside = Array(0..<(Self.lead + w)) + Array((Self.lead + (text.utf8.count + 1) * w)..<bits.count)
        for i in outside {
            bits[i] ^= 1
            if case .success(let read) = TrackDecoding.decodeEitherDirection(bits, format: format) {
                #expect(read.text == text, "flip at bit \(i) gave other text")
            }
            bits[i] ^= 1
        }
    }

    @Test("no double flip decodes to other text", arguments: TrackFormat.allCases)
    func doubleFlips(format: TrackFormat) {
        let text = Cards.text(format)
        var bits = Self.cleanBits(format)
        let n = bits.count
        var wrong = 0
        var trueReads = 0
        var refused = 0
        for i in 0..<n {
            bits[i] ^= 1
            for j in (i + 1)..<n {
                bits[j] ^= 1
                // Search both directions, as a live decoder would.
                switch TrackDecoding.decodeEitherDirection(bits, format: format) {
                case .success(let read):
                    if read.text == text { trueReads += 1 } else { wrong += 1 }
                case .failure:
                    refused += 1
                }
                bits[j] ^= 1
            }
            bits[i] ^= 1
        }
        #expect(wrong == 0)
        #expect(trueReads + refused + wrong == n * (n - 1) / 2)
        // Flips that both land in the clocking zeros far from the frame leave the text intact.
        #expect(trueReads > 0)
        #expect(refused > 0)
    }
}
