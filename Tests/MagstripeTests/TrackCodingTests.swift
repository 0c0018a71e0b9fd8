import Testing
import Magstripe

@Suite("Track encoding and decoding")
struct TrackCodingTests {
    @Test("text → bits → text round-trips on every track in both directions",
          arguments: TrackFormat.allCases, SwipeDirection.allCases)
    func roundTrip(format: TrackFormat, direction: SwipeDirection) throws {
        let text = Cards.text(format)
        let bits = try TrackEncoding.bits(for: text, format: format, leadingZeros: 25, trailingZeros: 30,
                                          direction: direction)
        let read = try TrackDecoding.decode(bits, format: format, direction: direction).get()
        #expect(read.text == text)
        #expect(read.corrections.isEmpty)
        #expect(read.direction == direction)
        // Either-direction search finds it too, and names the direction.
        let either = try TrackDecoding.decodeEitherDirection(bits, format: format).get()
        #expect(either.text == text)
        #expect(either.direction == direction)
        // Read the wrong way round, it is not a track.
        let opposite: SwipeDirection = direction == .forward ? .reverse : .forward
        #expect(throws: TrackReadError.self) { try TrackDecoding.decode(bits, format: format, direction: opposite).get() }
    }

    @Test("bit layout: LSB first, odd parity, LRC over data bits with its own parity")
    func bitLayout() throws {
        // ";1?" on Track 2: ; = 0xB, 1 = 0x1, ? = 0xF; LRC = B ^ 1 ^ F = 5.
        let bits = try TrackEncoding.bits(for: ";1?", format: .track2, leadingZeros: 0, trailingZeros: 0)
        #expect(bits == [1, 1, 0, 1, 0,  1, 0, 0, 0, 0,  1, 1, 1, 1, 1,  1, 0, 1, 0, 1])
        // "%?" on Track 1: % = 0x05, ? = 0x1F; LRC = 0x1A (three ones → parity 0).
        let t1 = try TrackEncoding.bits(for: "%?", format: .track1, leadingZeros: 2, trailingZeros: 1)
        #expect(t1 == [0, 0,  1, 0, 1, 0, 0, 0, 1,  1, 1, 1, 1, 1, 0, 0,  0, 1, 0, 1, 1, 0, 0,  0])
    }

    @Test("leading and trailing clocking zeros are ignored, whatever their number")
    func clocking() throws {
        for lead in [0, 1, 7, 60] {
            for trail in [0, 3, 14, 80] {
                let bits = try TrackEncoding.bits(for: Cards.track2, format: .track2,
                                                  leadingZeros: lead, trailingZeros: trail)
                #expect(try TrackDecoding.decode(bits, format: .track2).get().text == Cards.track2)
            }
        }
    }

    @Test("encoding refuses what a card cannot hold")
    func encodingRefusals() {
        #expect(throws: TrackEncodingError.missingStartSentinel(expected: ";")) {
            try TrackEncoding.values(of: "4111?", format: .track2)
        }
        #expect(throws: TrackEncodingError.missingEndSentinel) {
            try TrackEncoding.values(of: ";4111", format: .track2)
        }
        #expect(throws: TrackEncodingError.invalidCharacter("A", at: 1)) {
            try TrackEncoding.values(of: ";A11?", format: .track2)
        }
        #expect(throws: TrackEncodingError.invalidCharacter("a", at: 2)) {
            try TrackEncoding.values(of: "%Ba^?", format: .track1)
        }
        #expect(throws: TrackEncodingError.invalidCharacter("é", at: 2)) {
            try TrackEncoding.values(of: "%Bé^?", format: .track1)
        }
        #expect(throws: TrackEncodingError.sentinelInData(at: 2)) {
            try TrackEncoding.values(of: ";1?2?", format: .track2)
        }
        let long = ";" + String(repeating: "1", count: 38) + "?"   // 40 + LRC = 41 > 40
        #expect(throws: TrackEncodingError.tooLong(characters: 41, maximum: 40)) {
            try TrackEncoding.values(of: long, format: .track2)
        }
        let fits = ";" + String(repeating: "1", count: 37) + "?"
        #expect((try? TrackEncoding.values(of: fits, format: .track2)) != nil)
    }

    // MARK: must-fail reads

    private func bits(_ format: TrackFormat = .track2) -> [UInt8] {
        try! TrackEncoding.bits(for: Cards.text(format), format: format, leadingZeros: 20, trailingZeros: 20)
    }

    /// Index of bit `bit` of character `character` in `bits()` (20 leading zeros).
    private func position(_ format: TrackFormat, character: Int, bit: Int) -> Int {
        20 + character * format.characterWidth + bit
    }

    @Test("a single wrong parity bit is refused without correction, corrected with it")
    func parity() throws {
        var b = bits()
        b[position(.track2, character: 5, bit: 4)] ^= 1
        #expect(TrackDecoding.decode(b, format: .track2, correct: false) == .failure(.parityError(at: 5)))
        let fixed = try TrackDecoding.decode(b, format: .track2).get()
        #expect(fixed.text == Cards.track2)
        #expect(fixed.corrections == [BitCorrection(characterIndex: 5, bit: 4)])
    }

    @Test("two characters with parity errors are refused, naming the first")
    func twoParityErrors() {
        var b = bits()
        b[position(.track2, character: 3, bit: 0)] ^= 1
        b[position(.track2, character: 9, bit: 2)] ^= 1
        #expect(TrackDecoding.decode(b, format: .track2) == .failure(.parityError(at: 3)))
    }

    @Test("a wrong LRC is refused")
    func wrongLRC() {
        var b = bits()
        let lrcIndex = Cards.track2.utf8.count
        // Flip a data bit of the LRC and its parity bit: parity holds, the LRC does not.
        b[position(.track2, character: lrcIndex, bit: 1)] ^= 1
        b[position(.track2, character: lrcIndex, bit: 4)] ^= 1
        #expect(TrackDecoding.decode(b, format: .track2) == .failure(.lrcMismatch))
        // Two errors in one data character: parity holds, the LRC disagrees in two columns.
        var c = bits()
        c[position(.track2, character: 4, bit: 0)] ^= 1
        c[position(.track2, character: 4, bit: 1)] ^= 1
        #expect(TrackDecoding.decode(c, format: .track2) == .failure(.lrcMismatch))
    }

    @Test("a card's track frames whole; a start sentinel that chance put in noise frames a character or two",
          arguments: TrackFormat.allCases, SwipeDirection.allCases)
    func framedCharacters(format: TrackFormat, direction: SwipeDirection) throws {
        let text = Cards.text(format)
        let card = try TrackEncoding.bits(for: text, format: format, leadingZeros: 20, trailingZeros: 20,
                                          direction: direction)
        // Every character of the track and its LRC has good parity, read in either direction.
        #expect(TrackDecoding.framedCharacters(card, format: format) == text.utf8.count + 1)

        // A parity error at character 5: the frame holds 5 before it.
        var scratched = try TrackEncoding.bits(for: text, format: format, leadingZeros: 20, trailingZeros: 20)
        scratched[20 + 5 * format.characterWidth] ^= 1
        #expect(TrackDecoding.framedCharacters(scratched, format: format) == 5)

        // Noise: clocking zeros, a start sentinel, then a character with bad parity.
        var noise = [UInt8](repeating: 0, count: 12)
        TrackEncoding.appendCharacter(format.startSentinelValue, format: format, to: &noise)
        TrackEncoding.appendCharacter(3, format: format, to: &noise)
        noise[noise.count - 1] ^= 1
        noise += [1, 0, 1, 1, 0, 1]
        #expect(TrackDecoding.framedCharacters(noise, format: format) == 1)
        // A sentinel with a one bit just before it is not framed at all.
        var unframed: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        TrackEncoding.appendCharacter(format.startSentinelValue, format: format, to: &unframed)
        TrackEncoding.appendCharacter(3, format: format, to: &unframed)
        #expect(TrackDecoding.framedCharacters(unframed, format: format) == 0)
        #expect(TrackDecoding.framedCharacters([], format: format) == 0)
    }

    @Test("a missing end sentinel is refused")
    func missingEndSentinel() {
        // Characters with good parity but no `?`: ;4111 then the LRC, then zeros.
        let values: [UInt8] = [0xB, 4, 1, 1, 1]
        var b = [UInt8](repeating: 0, count: 10)
        for v in values { TrackEncoding.appendCharacter(v, format: .track2, to: &b) }
        TrackEncoding.appendCharacter(TrackEncoding.lrc(of: values), format: .track2, to: &b)
        b += [UInt8](repeating: 0, count: 20)
        #expect(TrackDecoding.decode(b, format: .track2) == .failure(.noEndSentinel))
    }

    @Test("truncated swipes are refused", arguments: [0.3, 0.6, 0.95])
    func truncated(fraction: Double) {
        let b = bits(.track1)
        let cut = Array(b.prefix(Int(Double(b.count - 20) * fraction)))
        let result = TrackDecoding.decode(cut, format: .track1)
        #expect(result == .failure(.noEndSentinel))
    }

    @Test("an end sentinel with its LRC cut off is refused as missingLRC")
    func cutAfterEndSentinel() {
        let b = bits()
        let lrcStart = position(.track2, character: Cards.track2.utf8.count, bit: 0)
        #expect(TrackDecoding.decode(Array(b.prefix(lrcStart)), format: .track2) == .failure(.missingLRC))
    }

    @Test("no start sentinel in zeros, and the wrong format is refused")
    func noStartSentinel() {
        #expect(TrackDecoding.decode([UInt8](repeating: 0, count: 300), format: .track1) == .failure(.noStartSentinel))
        #expect(TrackDecoding.decode([], format: .track2) == .failure(.noStartSentinel))
        // Track 2 bits read as Track 1 (and the reverse) give no track.
        #expect(throws: TrackReadError.self) { try TrackDecoding.decode(bits(.track2), format: .track1).get() }
        #expect(throws: TrackReadError.self) { try TrackDecoding.decode(bits(.track1), format: .track2).get() }
    }

    @Test("a track longer than the format holds is refused")
    func tooLong() {
        // 41 characters with good parity and LRC on Track 2.
        let values: [UInt8] = [0xB] + [UInt8](repeating: 1, count: 38) + [0xF]
        let b = TrackEncoding.bits(forValues: values, format: .track2, leadingZeros: 10, trailingZeros: 20)
        #expect(TrackDecoding.decode(b, format: .track2) == .failure(.tooLong(characters: 41)))
    }

    @Test("a data character that looks like `?` is not taken for the end sentinel")
    func falseEndSentinel() throws {
        // Damage a data character into `?` with good parity: two flips. The real data after it
        // shows the frame is wrong; the read must fail, never return the shortened text.
        var b = bits()
        // '1' (0001, parity 0) → '?' (1111, parity 1): flip bits 1, 2, 3 and parity: 4 flips,
        // which is beyond correction; the read must not come back as ";4?".
        for bit in [1, 2, 3, 4] { b[position(.track2, character: 2, bit: bit)] ^= 1 }
        let result = TrackDecoding.decode(b, format: .track2)
        if case .success(let t) = result { #expect(t.text == Cards.track2) }
    }

    @Test("random bits never decode", arguments: TrackFormat.allCases)
    func noise(format: TrackFormat) {
        var rng = TestRandom(seed: UInt64(format.rawValue) * 7919)
        var accepted = 0
        for _ in 0..<3_000 {
            let n = Int.random(in: 50...800, using: &rng)
            // Sparse and dense noise: what a slipping clock or hiss produces.
            let density = Double.random(in: 0.05...0.6, using: &rng)
            let b = (0..<n).map { _ in Double.random(in: 0..<1, using: &rng) < density ? UInt8(1) : 0 }
            if case .success = TrackDecoding.decodeEitherDirection(b, format: format) { accepted += 1 }
        }
        #expect(accepted == 0)
    }
}
