/// How samples were stored in the file.
public enum SampleEncoding: String, Sendable, Hashable, CustomStringConvertible {
    case int16 = "16-bit integer"
    case int24 = "24-bit integer"
    case int32 = "32-bit integer"
    case float32 = "32-bit float"

    public var bytesPerSample: Int {
        switch self {
        case .int16: 2
        case .int24: 3
        case .int32, .float32: 4
        }
    }

    public var description: String { rawValue }
}

/// PCM audio: planar channels of samples scaled to [-1, 1).
public struct PCMAudio: Sendable, Equatable {
    public var sampleRate: Int
    /// One array per channel, all of the same length.
    public var channels: [[Float]]
    /// The encoding the samples came from (or will be written in).
    public var encoding: SampleEncoding

    public init(sampleRate: Int, channels: [[Float]], encoding: SampleEncoding = .int16) {
        precondition(!channels.isEmpty, "PCMAudio needs at least one channel")
        precondition(channels.allSatisfy { $0.count == channels[0].count }, "channels differ in length")
        self.sampleRate = sampleRate
        self.channels = channels
        self.encoding = encoding
    }

    public var frameCount: Int { channels[0].count }
    public var duration: Double { Double(frameCount) / Double(sampleRate) }
}

/// What is wrong with a WAV file. Each case says enough for a person to act on.
public enum WAVError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The bytes do not start with a RIFF/WAVE header.
    case notWAV
    /// No `fmt ` chunk before the `data` chunk.
    case missingFormatChunk
    /// No `data` chunk.
    case missingDataChunk
    /// A chunk claims more bytes than the file has.
    case truncated(chunk: String, declared: Int, available: Int)
    /// A format tag other than PCM (1), IEEE float (3) or extensible (0xFFFE) with one of those.
    case unsupportedFormat(tag: UInt16)
    /// A sample size this reader does not take (8-bit, 64-bit float, …).
    case unsupportedBitDepth(Int, float: Bool)
    /// Only mono and stereo recordings are read.
    case unsupportedChannelCount(Int)
    /// A rate outside `SampleRate.supported`.
    case unsupportedSampleRate(Int)
    /// Internally inconsistent header fields.
    case malformed(String)

    public var description: String {
        switch self {
        case .notWAV: "not a WAV file (no RIFF/WAVE header)"
        case .missingFormatChunk: "WAV has no 'fmt ' chunk before its data"
        case .missingDataChunk: "WAV has no 'data' chunk"
        case .truncated(let chunk, let declared, let available):
            "WAV is truncated: its '\(chunk)' chunk declares \(declared) bytes but only \(available) are present"
        case .unsupportedFormat(let tag): "unsupported WAV encoding (format tag 0x\(String(tag, radix: 16))): only PCM and IEEE float are read"
        case .unsupportedBitDepth(let bits, let float):
            "unsupported sample size: \(bits)-bit \(float ? "float" : "integer"); 16/24/32-bit integer and 32-bit float are read"
        case .unsupportedChannelCount(let n): "unsupported channel count \(n): mono and stereo are read"
        case .unsupportedSampleRate(let r): UnsupportedSampleRate(rate: r).description
        case .malformed(let what): "malformed WAV: \(what)"
        }
    }
}

/// WAV bytes ↔ samples. Pure: the file I/O is the caller's.
public enum WAV {
    /// Data chunk sizes that streaming writers put in a header they cannot seek back to fix:
    /// the data runs to the end of the file.
    static let streamingSizes: Set<UInt32> = [0, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x7FFF_F000]

    private static let extensibleGUIDTail: [UInt8] =
        [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]

    /// Reads 16/24/32-bit integer or 32-bit float PCM, mono or stereo.
    public static func decode(_ bytes: [UInt8]) throws(WAVError) -> PCMAudio {
        guard bytes.count >= 12, tag(bytes, 0) == "RIFF", tag(bytes, 8) == "WAVE" else { throw .notWAV }
        var offset = 12
        var format: (encoding: SampleEncoding, channels: Int, rate: Int, blockAlign: Int)?
        while offset + 8 <= bytes.count {
            let id = tag(bytes, offset)
            let declared = u32(bytes, offset + 4)
            let bodyStart = offset + 8
            let available = bytes.count - bodyStart
            if id == "data" {
                guard let format else { throw .missingFormatChunk }
                var size = Int(declared)
                if size > available {
                    guard streamingSizes.contains(declared) else {
                        throw .truncated(chunk: "data", declared: size, available: available)
                    }
                    size = available - available % format.blockAlign
                } else if declared == 0 {
                    size = available - available % format.blockAlign
                }
                guard size % format.blockAlign == 0 else {
                    throw .malformed("'data' chunk of \(size) bytes is not a whole number of \(format.blockAlign)-byte frames")
                }
                return try samples(bytes, from: bodyStart, byteCount: size, format: format)
            }
            guard Int(declared) <= available else {
                throw .truncated(chunk: id, declared: Int(declared), available: available)
            }
            if id == "fmt " {
                format = try parseFormat(bytes[bodyStart ..< bodyStart + Int(declared)])
            }
            offset = bodyStart + Int(declared) + Int(declared & 1)
        }
        throw format == nil ? .missingFormatChunk : .missingDataChunk
    }

    private static func parseFormat(
        _ chunk: ArraySlice<UInt8>
    ) throws(WAVError) -> (encoding: SampleEncoding, channels: Int, rate: Int, blockAlign: Int) {
        let c = Array(chunk)
        guard c.count >= 16 else { throw .malformed("'fmt ' chunk has \(c.count) bytes, needs 16") }
        var formatTag = u16(c, 0)
        let channels = Int(u16(c, 2))
        let rate = Int(u32(c, 4))
        let blockAlign = Int(u16(c, 12))
        let bits = Int(u16(c, 14))
        if formatTag == 0xFFFE {
            guard c.count >= 40 else { throw .malformed("extensible 'fmt ' chunk has \(c.count) bytes, needs 40") }
            guard Array(c[26..<40]) == extensibleGUIDTail else { throw .unsupportedFormat(tag: 0xFFFE) }
            formatTag = u16(c, 24)
        }
        let encoding: SampleEncoding
        switch (formatTag, bits) {
        case (1, 16): encoding = .int16
        case (1, 24): encoding = .int24
        case (1, 32): encoding = .int32
        case (3, 32): encoding = .float32
        case (1, _): throw .unsupportedBitDepth(bits, float: false)
        case (3, _): throw .unsupportedBitDepth(bits, float: true)
        default: throw .unsupportedFormat(tag: formatTag)
        }
        guard channels == 1 || channels == 2 else { throw .unsupportedChannelCount(channels) }
        guard SampleRate.supported.contains(rate) else { throw .unsupportedSampleRate(rate) }
        guard blockAlign == channels * encoding.bytesPerSample else {
            throw .malformed("block align \(blockAlign) does not match \(channels) channel(s) of \(encoding)")
        }
        return (encoding, channels, rate, blockAlign)
    }

    private static func samples(
        _ b: [UInt8], from start: Int, byteCount: Int,
        format: (encoding: SampleEncoding, channels: Int, rate: Int, blockAlign: Int)
    ) throws(WAVError) -> PCMAudio {
        let frames = byteCount / format.blockAlign
        let width = format.encoding.bytesPerSample
        var channels = [[Float]](repeating: [], count: format.channels)
        for ch in 0..<format.channels {
            var out = [Float](repeating: 0, count: frames)
            var p = start + ch * width
            for i in 0..<frames {
                switch format.encoding {
                case .int16:
                    out[i] = Float(Int16(bitPattern: u16(b, p))) / 32_768
                case .int24:
                    let raw = Int32(b[p]) | Int32(b[p + 1]) << 8 | Int32(b[p + 2]) << 16
                    out[i] = Float((raw << 8) >> 8) / 8_388_608
                case .int32:
                    out[i] = Float(Int32(bitPattern: u32(b, p))) / 2_147_483_648
                case .float32:
                    let value = Float(bitPattern: u32(b, p))
                    guard value.isFinite else {
                        throw .malformed("sample \(i) of channel \(ch + 1) is not a number (NaN or infinity)")
                    }
                    out[i] = value
                }
                p += format.blockAlign
            }
            channels[ch] = out
        }
        return PCMAudio(sampleRate: format.rate, channels: channels, encoding: format.encoding)
    }

    /// A 16-bit PCM WAV of the audio (values outside [-1, 1) are clipped).
    public static func encode16(_ audio: PCMAudio) -> [UInt8] {
        let channels = audio.channels.count
        let frames = audio.frameCount
        let dataBytes = frames * channels * 2
        var out = [UInt8]()
        out.reserveCapacity(44 + dataBytes)
        out += Array("RIFF".utf8); put32(&out, UInt32(36 + dataBytes)); out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); put32(&out, 16)
        put16(&out, 1); put16(&out, UInt16(channels)); put32(&out, UInt32(audio.sampleRate))
        put32(&out, UInt32(audio.sampleRate * channels * 2)); put16(&out, UInt16(channels * 2)); put16(&out, 16)
        out += Array("data".utf8); put32(&out, UInt32(dataBytes))
        for i in 0..<frames {
            for ch in 0..<channels {
                put16(&out, UInt16(bitPattern: quantize16(audio.channels[ch][i])))
            }
        }
        return out
    }

    /// A sample in [-1, 1) as a 16-bit integer, rounded and clipped.
    @inlinable
    public static func quantize16(_ x: Float) -> Int16 {
        let scaled = (x * 32_768).rounded()
        if scaled.isNaN { return 0 }
        if scaled >= 32_767 { return .max }
        if scaled <= -32_768 { return .min }
        return Int16(scaled)
    }

    // MARK: little-endian helpers

    @inline(__always) static func u16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    @inline(__always) static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
    static func tag(_ b: [UInt8], _ i: Int) -> String { String(decoding: b[i ..< i + 4], as: UTF8.self) }
    static func put16(_ out: inout [UInt8], _ v: UInt16) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8)) }
    static func put32(_ out: inout [UInt8], _ v: UInt32) {
        for s in stride(from: 0, to: 32, by: 8) { out.append(UInt8((v >> UInt32(s)) & 0xFF)) }
    }
}
