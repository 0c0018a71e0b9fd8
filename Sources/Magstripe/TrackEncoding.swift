/// Why a text cannot be written to a track.
public enum TrackEncodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case missingStartSentinel(expected: Character)
    case missingEndSentinel
    /// A character outside the track's character set, at this index of the text.
    case invalidCharacter(Character, at: Int)
    /// A start or end sentinel inside the data, at this index of the text.
    case sentinelInData(at: Int)
    /// The text plus its LRC exceeds the track's capacity.
    case tooLong(characters: Int, maximum: Int)

    public var description: String {
        switch self {
        case .missingStartSentinel(let s): "track text must start with the start sentinel \(s)"
        case .missingEndSentinel: "track text must end with the end sentinel ?"
        case .invalidCharacter(let c, let i): "character \(c.unicodeScalars.first.map { "U+\(String($0.value, radix: 16, uppercase: true))" } ?? "?") at index \(i) is not in the track's character set"
        case .sentinelInData(let i): "a sentinel appears inside the data at index \(i)"
        case .tooLong(let n, let max): "\(n) characters with the LRC, the track holds at most \(max)"
        }
    }
}

/// Text ↔ character values ↔ bits, as the card holds them.
public enum TrackEncoding {
    /// The data values of a track text (start sentinel through end sentinel), validated against
    /// the track's character set, sentinels and capacity.
    public static func values(of text: String, format: TrackFormat) throws(TrackEncodingError) -> [UInt8] {
        let ascii = Array(text.utf8)
        guard let first = ascii.first, first == format.ascii(ofValue: format.startSentinelValue) else {
            throw .missingStartSentinel(expected: format.startSentinel)
        }
        guard ascii.count >= 2, ascii.last == format.ascii(ofValue: format.endSentinelValue) else {
            throw .missingEndSentinel
        }
        if ascii.count != text.unicodeScalars.count {
            // A multi-byte scalar: find it to name it.
            for (i, scalar) in text.unicodeScalars.enumerated() where !scalar.isASCII {
                throw .invalidCharacter(Character(scalar), at: i)
            }
        }
        guard ascii.count + 1 <= format.maximumCharacters else {
            throw .tooLong(characters: ascii.count + 1, maximum: format.maximumCharacters)
        }
        var values = [UInt8]()
        values.reserveCapacity(ascii.count)
        for (i, code) in ascii.enumerated() {
            guard let value = format.value(ofASCII: code) else {
                throw .invalidCharacter(Character(Unicode.Scalar(code)), at: i)
            }
            let isInner = i > 0 && i < ascii.count - 1
            if isInner && (value == format.startSentinelValue || value == format.endSentinelValue) {
                throw .sentinelInData(at: i)
            }
            values.append(value)
        }
        return values
    }

    /// The LRC of a run of character values: the XOR of their data bits.
    @inlinable
    public static func lrc<C: Collection>(of values: C) -> UInt8 where C.Element == UInt8 {
        values.reduce(0, ^)
    }

    /// The bits of one character: data bits least significant first, then the odd-parity bit.
    public static func appendCharacter(_ value: UInt8, format: TrackFormat, to bits: inout [UInt8]) {
        for b in 0..<format.bitsPerCharacter {
            bits.append((value >> UInt8(b)) & 1)
        }
        bits.append(TrackFormat.oddParityBit(value))
    }

    /// The bit string a head reads from a track holding `text`, in the order the head meets it.
    ///
    /// - Parameters:
    ///   - leadingZeros: clocking zeros before the start sentinel (in card order).
    ///   - trailingZeros: clocking zeros after the LRC (in card order).
    ///   - direction: `.reverse` returns the string reversed, as a reverse swipe delivers it.
    public static func bits(
        for text: String, format: TrackFormat,
        leadingZeros: Int = 20, trailingZeros: Int = 20,
        direction: SwipeDirection = .forward
    ) throws(TrackEncodingError) -> [UInt8] {
        let values = try values(of: text, format: format)
        return bits(forValues: values, format: format, leadingZeros: leadingZeros,
                    trailingZeros: trailingZeros, direction: direction)
    }

    /// The bit string of already-validated character values (start sentinel through end
    /// sentinel); the LRC is appended here.
    public static func bits(
        forValues values: [UInt8], format: TrackFormat,
        leadingZeros: Int, trailingZeros: Int, direction: SwipeDirection = .forward
    ) -> [UInt8] {
        var bits = [UInt8](repeating: 0, count: leadingZeros)
        bits.reserveCapacity(leadingZeros + (values.count + 1) * format.characterWidth + trailingZeros)
        for value in values {
            appendCharacter(value, format: format, to: &bits)
        }
        appendCharacter(lrc(of: values), format: format, to: &bits)
        bits.append(contentsOf: repeatElement(0, count: trailingZeros))
        if direction == .reverse { bits.reverse() }
        return bits
    }
}
