/// The three ISO/IEC 7811-2 / 7813 track formats of a magnetic-stripe card.
///
/// A character is `bitsPerCharacter` data bits, sent least significant bit first, followed by an
/// odd-parity bit. The text of a track always starts with its start sentinel and ends with `?`;
/// after the end sentinel the card holds a longitudinal redundancy check (LRC) character.
public enum TrackFormat: Int, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    /// 6-bit alphanumeric characters (`value + 0x20`), 210 bpi, `%` … `?`.
    case track1 = 1
    /// 4-bit numeric characters (`value + 0x30`), 75 bpi, `;` … `?`.
    case track2 = 2
    /// 4-bit numeric characters (`value + 0x30`), 210 bpi, `;` … `?`.
    case track3 = 3

    /// Data bits per character, without the parity bit.
    public var bitsPerCharacter: Int { self == .track1 ? 6 : 4 }

    /// Bits per character on the stripe, parity included.
    public var characterWidth: Int { bitsPerCharacter + 1 }

    /// The ASCII code of data value zero.
    public var asciiOffset: UInt8 { self == .track1 ? 0x20 : 0x30 }

    /// Recording density, bits per inch.
    public var bitsPerInch: Double { self == .track2 ? 75 : 210 }

    /// Recording density, bits per millimetre.
    public var bitsPerMillimetre: Double { bitsPerInch / 25.4 }

    /// Nominal length of one bit cell on the card, in millimetres.
    public var cellLengthMillimetres: Double { 25.4 / bitsPerInch }

    /// The most characters the track may hold, start and end sentinels and the LRC included
    /// (ISO/IEC 7813 for tracks 1 and 2, ISO 4909 for track 3).
    public var maximumCharacters: Int {
        switch self {
        case .track1: 79
        case .track2: 40
        case .track3: 107
        }
    }

    /// The most characters of text (start sentinel through end sentinel): the LRC takes one slot.
    public var maximumTextLength: Int { maximumCharacters - 1 }

    public var startSentinel: Character { self == .track1 ? "%" : ";" }
    public var endSentinel: Character { "?" }

    /// Data value (without parity) of the start sentinel.
    public var startSentinelValue: UInt8 { value(ofASCII: self == .track1 ? 0x25 : 0x3B)! }
    /// Data value (without parity) of the end sentinel.
    public var endSentinelValue: UInt8 { value(ofASCII: 0x3F)! }

    /// The data value that encodes an ASCII code on this track, or nil when the track's
    /// character set has no such character.
    public func value(ofASCII code: UInt8) -> UInt8? {
        guard code >= asciiOffset else { return nil }
        let value = code - asciiOffset
        return value < (1 << bitsPerCharacter) ? value : nil
    }

    /// The ASCII code of a data value (the value must be below `1 << bitsPerCharacter`).
    public func ascii(ofValue value: UInt8) -> UInt8 {
        precondition(Int(value) < (1 << bitsPerCharacter), "value out of range for \(self)")
        return value + asciiOffset
    }

    /// The odd-parity bit for a data value: 1 when the value has an even number of one bits.
    @inlinable
    public static func oddParityBit(_ value: UInt8) -> UInt8 {
        UInt8(truncatingIfNeeded: (value.nonzeroBitCount & 1) ^ 1)
    }

    public var description: String { "Track \(rawValue)" }
}

/// Which way the card moved past the head. A reverse swipe delivers the bit string reversed.
public enum SwipeDirection: String, Sendable, Hashable, CaseIterable {
    case forward
    case reverse
}
