public import Secrets

/// One bit that single-error correction flipped.
public struct BitCorrection: Sendable, Hashable, CustomStringConvertible {
    /// Index of the character in the track: 0 is the start sentinel, the last is the LRC.
    public let characterIndex: Int
    /// Bit within the character: `0 ..< bitsPerCharacter` are data bits (least significant
    /// first), `bitsPerCharacter` is the parity bit.
    public let bit: Int

    public init(characterIndex: Int, bit: Int) {
        self.characterIndex = characterIndex
        self.bit = bit
    }

    public var description: String { "character \(characterIndex) bit \(bit)" }
}

/// A track read whose parity and LRC checks hold (possibly after one correction).
public struct DecodedTrack: Sendable, Hashable {
    public let format: TrackFormat
    /// The direction the bits had to be read in to find the track.
    public let direction: SwipeDirection
    /// Start sentinel through end sentinel, as ASCII, in a wiped buffer.
    public let text: SecretText
    /// The bits flipped by single-error correction (empty for a clean read).
    public let corrections: [BitCorrection]
    /// Where the start sentinel begins, as an index into the bit string in `direction` order.
    public let startBit: Int
    /// One past the LRC's last bit, in the same order.
    public let endBit: Int

    /// Characters between the sentinels.
    public var dataLength: Int { max(0, text.count - 2) }
}

/// Why a bit string is not a valid track. Each names the check that failed and where.
public enum TrackReadError: Error, Sendable, Hashable, CustomStringConvertible {
    /// No start sentinel (with good parity, after clocking zeros) in the bits.
    case noStartSentinel
    /// A start sentinel, but no end sentinel followed by an LRC and clocking zeros.
    case noEndSentinel
    /// The end sentinel is the last thing in the bits: the LRC is cut off.
    case missingLRC
    /// Parity failed at this character index (0 = start sentinel) and could not be corrected.
    case parityError(at: Int)
    /// Every character has good parity but the LRC does not match.
    case lrcMismatch
    /// A sentinel inside the data, at this character index.
    case unexpectedSentinel(at: Int)
    /// More characters than the format holds.
    case tooLong(characters: Int)

    public var description: String {
        switch self {
        case .noStartSentinel: "no start sentinel"
        case .noEndSentinel: "no end sentinel"
        case .missingLRC: "LRC missing after the end sentinel (truncated)"
        case .parityError(let i): "parity error at character \(i)"
        case .lrcMismatch: "LRC mismatch"
        case .unexpectedSentinel(let i): "sentinel inside the data at character \(i)"
        case .tooLong(let n): "too long (\(n) characters)"
        }
    }

    /// A short machine-readable name (`parityError`, `lrcMismatch`, …).
    public var code: String {
        switch self {
        case .noStartSentinel: "noStartSentinel"
        case .noEndSentinel: "noEndSentinel"
        case .missingLRC: "missingLRC"
        case .parityError: "parityError"
        case .lrcMismatch: "lrcMismatch"
        case .unexpectedSentinel: "unexpectedSentinel"
        case .tooLong: "tooLong"
        }
    }
}

/// Bits → characters, with parity, LRC, framing and single-error correction.
///
/// Framing rules, which keep a wrong read from passing the weak parity and LRC checks:
/// - the start sentinel must have good parity and be preceded by at least one character's
///   width of clocking zeros (or the start of the bits);
/// - an end sentinel counts only if an LRC character follows it and the bits after the LRC
///   (up to two character widths of them) are clocking zeros; a data character that merely
///   looks like `?` is followed by more data, not by zeros;
/// - when no end sentinel is found that way (its own bits may be damaged), the frame is taken
///   from the last one bit: the LRC is the last character, the end sentinel the one before it,
///   and correction must restore the sentinel.
///
/// A scratch or a speck beside the frame leaves a stray one bit among the clocking zeros, which
/// the first two rules would take for data. When the strict search finds no frame, a second
/// search finds the frame by its own checks, as hardware readers do: the zeros beside it may
/// hold a few stray one bits (`strayBits` in `besideCharacters` widths each side, with a run
/// of at least one character's width of zeros there), and the frame must then pass every check
/// without correction and without the last-one-bit fallback.
public enum TrackDecoding {
    /// Clocking zeros required after the LRC, in character widths.
    public static let trailerCharacters = 2
    /// The second search: stray one bits tolerated beside the frame, each side.
    public static let strayBits = 2
    /// The second search: how far beside the frame it looks, in character widths.
    public static let besideCharacters = 4

    /// Reads one track format in one direction.
    ///
    /// - Parameter bits: values 0 or 1, in the order the head delivered them.
    /// - Parameter correct: apply single-error correction.
    /// - Parameter acrossStrays: when the strict search finds no frame, search again allowing
    ///   stray one bits beside it (see the type's notes).
    public static func decode(
        _ bits: [UInt8], format: TrackFormat, direction: SwipeDirection = .forward,
        correct: Bool = true, acrossStrays: Bool = true
    ) -> Result<DecodedTrack, TrackReadError> {
        if direction == .reverse {
            return decodeOriented(Array(bits.reversed()), format: format, direction: .reverse, correct: correct, acrossStrays: acrossStrays)
        }
        return decodeOriented(bits, format: format, direction: .forward, correct: correct, acrossStrays: acrossStrays)
    }

    /// Tries both directions; returns the successful read, or the forward error when neither
    /// direction reads (the reverse error when only reverse found a start sentinel).
    public static func decodeEitherDirection(
        _ bits: [UInt8], format: TrackFormat, correct: Bool = true, acrossStrays: Bool = true
    ) -> Result<DecodedTrack, TrackReadError> {
        let forward = decode(bits, format: format, direction: .forward, correct: correct, acrossStrays: acrossStrays)
        if case .success = forward { return forward }
        let reverse = decode(bits, format: format, direction: .reverse, correct: correct, acrossStrays: acrossStrays)
        if case .success = reverse { return reverse }
        if case .failure(.noStartSentinel) = forward { return reverse }
        return forward
    }

    /// The most characters in a row with good parity from a start sentinel that clocking zeros
    /// precede (the sentinel counted), over both directions: how far a failed read got into a
    /// track's framing. A sentinel alone turns up by chance in a few hundred random bits
    /// (about once per 1 000 cells for the 5-bit formats); each further character with good
    /// parity halves that chance, while a card's track gives dozens.
    public static func framedCharacters(_ bits: [UInt8], format: TrackFormat) -> Int {
        let w = format.characterWidth
        guard bits.count >= w else { return 0 }
        var best = 0
        for b in [bits, Array(bits.reversed())] {
            var p = 0
            while p + w <= b.count {
                if startsFrame(b, at: p, format: format) {
                    var n = 1, i = p + w
                    while i + w <= b.count, readCharacter(b, at: i, format: format).parityOK {
                        n += 1
                        i += w
                    }
                    best = max(best, n)
                }
                p += 1
            }
        }
        return best
    }

    // MARK: - Implementation

    static func decodeOriented(
        _ b: [UInt8], format: TrackFormat, direction: SwipeDirection, correct: Bool, acrossStrays: Bool
    ) -> Result<DecodedTrack, TrackReadError> {
        let w = format.characterWidth
        guard b.count >= w else { return .failure(.noStartSentinel) }
        var firstError: TrackReadError?
        var p = 0
        while p + w <= b.count {
            if startsFrame(b, at: p, format: format) {
                let result = frame(b, start: p, format: format, direction: direction, correct: correct)
                switch result {
                case .success: return result
                case .failure(let error): if firstError == nil { firstError = error }
                }
            }
            p += 1
        }
        // The second search: stray bits beside the frame. Only a frame that checks is taken from
        // it; the errors reported stay the strict search's.
        guard acrossStrays else { return .failure(firstError ?? .noStartSentinel) }
        p = 0
        while p + w <= b.count {
            if isStartSentinel(b, at: p, format: format),
               precededByZeros(b, at: p, count: w) || nearlyClear(b, from: p - besideCharacters * w, to: p, width: w),
               case .success(let read) = frame(b, start: p, format: format, direction: direction, correct: false, strays: true) {
                return .success(read)
            }
            p += 1
        }
        return .failure(firstError ?? .noStartSentinel)
    }

    /// Whether the cells `from..<to` (clipped to the bits; cells past either end count as zeros)
    /// hold at most `strayBits` one bits and a run of at least `width` zeros: clocking zeros with a
    /// scratch in them, not data.
    static func nearlyClear(_ b: [UInt8], from: Int, to: Int, width: Int) -> Bool {
        var ones = 0, run = 0, longest = 0
        for i in from..<to {
            if i >= 0 && i < b.count && b[i] != 0 {
                ones += 1
                if ones > strayBits { return false }
                run = 0
            } else {
                run += 1
                longest = max(longest, run)
            }
        }
        return longest >= width
    }

    /// A start sentinel with good parity at `p`.
    @inline(__always)
    static func isStartSentinel(_ b: [UInt8], at p: Int, format: TrackFormat) -> Bool {
        b[p] == 1 && readCharacter(b, at: p, format: format) == (format.startSentinelValue, true)
    }

    /// A start sentinel candidate: good parity, a character's width of clocking zeros before it.
    @inline(__always)
    static func startsFrame(_ b: [UInt8], at p: Int, format: TrackFormat) -> Bool {
        isStartSentinel(b, at: p, format: format) && precededByZeros(b, at: p, count: format.characterWidth)
    }

    @inline(__always)
    static func readCharacter(_ b: [UInt8], at i: Int, format: TrackFormat) -> (value: UInt8, parityOK: Bool) {
        var value: UInt8 = 0
        for k in 0..<format.bitsPerCharacter where b[i + k] != 0 {
            value |= 1 << UInt8(k)
        }
        let parity = b[i + format.bitsPerCharacter]
        return (value, parity == TrackFormat.oddParityBit(value))
    }

    static func precededByZeros(_ b: [UInt8], at p: Int, count: Int) -> Bool {
        var i = p - 1
        while i >= 0 && i >= p - count {
            if b[i] != 0 { return false }
            i -= 1
        }
        return true
    }

    static func zerosFollow(_ b: [UInt8], from i: Int, count: Int) -> Bool {
        var j = i
        let end = min(b.count, i + count)
        while j < end {
            if b[j] != 0 { return false }
            j += 1
        }
        return true
    }

    /// Frames a track from a start sentinel at `start` and checks it.
    ///
    /// `strays`: the second search. An end sentinel counts when the cells after its LRC are
    /// `nearlyClear` rather than all zeros, and there is no fallback from the last one bit.
    static func frame(
        _ b: [UInt8], start: Int, format: TrackFormat, direction: SwipeDirection, correct: Bool, strays: Bool = false
    ) -> Result<DecodedTrack, TrackReadError> {
        let w = format.characterWidth
        var values: [UInt8] = []
        var parities: [Bool] = []
        values.reserveCapacity(min(format.maximumCharacters + 2, (b.count - start) / w))
        var i = start
        var sawEndLikeCharacter = false
        while i + w <= b.count {
            let (value, parityOK) = readCharacter(b, at: i, format: format)
            values.append(value)
            parities.append(parityOK)
            i += w
            guard value == format.endSentinelValue, values.count >= 2 else { continue }
            sawEndLikeCharacter = true
            // An end sentinel needs an LRC after it, then clocking zeros.
            guard i + w <= b.count else { return .failure(.missingLRC) }
            let trailer = strays ? nearlyClear(b, from: i + w, to: i + w + besideCharacters * w, width: w)
                                 : zerosFollow(b, from: i + w, count: TrackDecoding.trailerCharacters * w)
            guard trailer else { continue }
            let (lrc, lrcParity) = readCharacter(b, at: i, format: format)
            values.append(lrc)
            parities.append(lrcParity)
            return check(values: values, parities: parities, format: format, direction: direction,
                         start: start, end: i + w, correct: correct)
        }
        // No end sentinel found by its bits: frame from the last one bit instead (not in the
        // second search, whose frames must check as they stand).
        guard !strays else { return .failure(.noEndSentinel) }
        guard let lastOne = b.lastIndex(of: 1), lastOne >= start else { return .failure(.noEndSentinel) }
        let count = (lastOne + 1 - start + w - 1) / w
        guard count >= 3 else { return .failure(.noEndSentinel) }
        guard start + count * w <= b.count else {
            return .failure(sawEndLikeCharacter ? .missingLRC : .noEndSentinel)
        }
        values.removeAll(keepingCapacity: true)
        parities.removeAll(keepingCapacity: true)
        for c in 0..<count {
            let (value, parityOK) = readCharacter(b, at: start + c * w, format: format)
            values.append(value)
            parities.append(parityOK)
        }
        let result = check(values: values, parities: parities, format: format, direction: direction,
                           start: start, end: start + count * w, correct: correct)
        if case .failure = result, values[count - 2] != format.endSentinelValue {
            return .failure(.noEndSentinel)
        }
        return result
    }

    /// Parity, LRC and sentinel checks on a framed track (`values` ends with the LRC), with
    /// single-error correction: exactly one character failing parity and the LRC disagreeing in
    /// at most one bit column locate the bad bit.
    static func check(
        values: [UInt8], parities: [Bool], format: TrackFormat, direction: SwipeDirection,
        start: Int, end: Int, correct: Bool
    ) -> Result<DecodedTrack, TrackReadError> {
        var values = values
        let lrcIndex = values.count - 1
        let endIndex = lrcIndex - 1
        if values.count > format.maximumCharacters { return .failure(.tooLong(characters: values.count)) }

        var failures = 0
        var failedAt = -1
        for (index, ok) in parities.enumerated() where !ok {
            failures += 1
            if failedAt < 0 { failedAt = index }
        }
        let syndrome = TrackEncoding.lrc(of: values[0...endIndex]) ^ values[lrcIndex]
        var corrections: [BitCorrection] = []
        switch failures {
        case 0:
            if syndrome != 0 { return .failure(.lrcMismatch) }
        case 1:
            guard correct else { return .failure(.parityError(at: failedAt)) }
            if syndrome == 0 {
                // The parity bit itself was wrong; the data bits are consistent with the LRC.
                corrections.append(BitCorrection(characterIndex: failedAt, bit: format.bitsPerCharacter))
            } else if syndrome.nonzeroBitCount == 1 {
                values[failedAt] ^= syndrome
                corrections.append(BitCorrection(characterIndex: failedAt, bit: syndrome.trailingZeroBitCount))
            } else {
                return .failure(.parityError(at: failedAt))
            }
        default:
            return .failure(.parityError(at: failedAt))
        }

        guard values[0] == format.startSentinelValue else { return .failure(.noStartSentinel) }
        guard values[endIndex] == format.endSentinelValue else { return .failure(.noEndSentinel) }
        for index in 1..<endIndex
        where values[index] == format.startSentinelValue || values[index] == format.endSentinelValue {
            return .failure(.unexpectedSentinel(at: index))
        }

        let text = SecretText(SecretBytes(count: endIndex + 1) { out in
            for i in 0...endIndex { out[i] = format.ascii(ofValue: values[i]) }
        })
        return .success(DecodedTrack(format: format, direction: direction, text: text,
                                     corrections: corrections, startBit: start, endBit: end))
    }
}
