import Testing
import AudioFile
import TestSupport

/// Builds WAV bytes field by field, so that every header variant can be made on purpose.
struct WAVBuilder {
    var formatTag: UInt16 = 1
    var channels: UInt16 = 1
    var rate: UInt32 = 44_100
    var bits: UInt16 = 16
    var blockAlign: UInt16?
    var extensibleSubformat: UInt16?
    var extraChunks: [(String, [UInt8])] = []
    var declaredDataSize: UInt32?
    var includeFormat = true
    var includeData = true

    func build(data: [UInt8]) -> [UInt8] {
        var fmt: [UInt8] = []
        // Wrapping: the header fields are built as a file could carry them, absurd ones too.
        let align = blockAlign ?? channels &* (bits / 8)
        le16(&fmt, extensibleSubformat == nil ? formatTag : 0xFFFE); le16(&fmt, channels); le32(&fmt, rate)
        le32(&fmt, rate &* UInt32(align)); le16(&fmt, align); le16(&fmt, bits)
        if let sub = extensibleSubformat {
            le16(&fmt, 22); le16(&fmt, bits); le32(&fmt, 0)
            le16(&fmt, sub)
            fmt += [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71]
        }
        var body: [UInt8] = Array("WAVE".utf8)
        for (id, bytes) in extraChunks { chunk(&body, id, bytes, declared: nil) }
        if includeFormat { chunk(&body, "fmt ", fmt, declared: nil) }
        if includeData { chunk(&body, "data", data, declared: declaredDataSize) }
        var out: [UInt8] = Array("RIFF".utf8)
        le32(&out, UInt32(body.count))
        return out + body
    }

    private func chunk(_ out: inout [UInt8], _ id: String, _ bytes: [UInt8], declared: UInt32?) {
        out += Array(id.utf8); le32(&out, declared ?? UInt32(bytes.count)); out += bytes
        if bytes.count % 2 == 1 && declared == nil { out.append(0) }
    }
}

func le16(_ out: inout [UInt8], _ v: UInt16) { out += [UInt8(v & 0xFF), UInt8(v >> 8)] }
func le32(_ out: inout [UInt8], _ v: UInt32) { out += (0..<4).map { UInt8((v >> UInt32($0 * 8)) & 0xFF) } }

@Suite("WAV reading and writing")
struct WAVTests {
    @Test("16-bit write → read round trip, mono and stereo", arguments: [1, 2])
    func roundTrip16(channels: Int) throws {
        let n = 1_000
        let audio = PCMAudio(sampleRate: 48_000, channels: (0..<channels).map { ch in
            (0..<n).map { i in Float(((i * 7919 + ch * 13) % 65_536) - 32_768) / 32_768 }
        })
        let bytes = WAV.encode16(audio)
        #expect(bytes.count == 44 + n * channels * 2)
        let back = try WAV.decode(bytes)
        #expect(back.sampleRate == 48_000)
        #expect(back.encoding == .int16)
        #expect(back.channels.count == channels)
        #expect(back == audio)    // values on the 16-bit grid survive exactly
    }

    @Test("writing clips and rounds to 16 bits")
    func clipping() throws {
        let audio = PCMAudio(sampleRate: 8_000, channels: [[2.0, -2.0, 0.5, 1.0 / 65_536 * 1.2, -0.999999]])
        let back = try WAV.decode(WAV.encode16(audio))
        #expect(back.channels[0] == [32_767.0 / 32_768, -1, 0.5, 1.0 / 32_768, -1])
    }

    @Test("24-bit, 32-bit integer and 32-bit float, plain and extensible")
    func otherEncodings() throws {
        var d24: [UInt8] = []
        for v: Int32 in [0, 4_194_304, -8_388_608, -1] {
            d24 += [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF), UInt8((v >> 16) & 0xFF)]
        }
        for sub: UInt16? in [nil, 1] {
            let a = try WAV.decode(WAVBuilder(bits: 24, extensibleSubformat: sub).build(data: d24))
            #expect(a.encoding == .int24)
            #expect(a.channels[0] == [0, 0.5, -1, -1.0 / 8_388_608])
        }
        var d32: [UInt8] = []
        for v: Int32 in [Int32.min, 1 << 30] { le32(&d32, UInt32(bitPattern: v)) }
        let b = try WAV.decode(WAVBuilder(bits: 32).build(data: d32))
        #expect(b.encoding == .int32)
        #expect(b.channels[0] == [-1, 0.5])
        var df: [UInt8] = []
        for v: Float in [0.25, -0.75, 0, 1] { le32(&df, v.bitPattern) }
        for builder in [WAVBuilder(formatTag: 3, channels: 2, bits: 32),
                        WAVBuilder(channels: 2, bits: 32, extensibleSubformat: 3)] {
            let f = try WAV.decode(builder.build(data: df))
            #expect(f.encoding == .float32)
            #expect(f.channels == [[0.25, 0], [-0.75, 1]])
        }
    }

    @Test("a float WAV holding NaN or infinity is refused, naming the sample (found by fuzz-wav); writing a NaN gives silence")
    func nonFinite() throws {
        for bad: Float in [.nan, .infinity, -.infinity] {
            var data: [UInt8] = []
            for v: Float in [0.25, bad] { le32(&data, v.bitPattern) }
            #expect(throws: WAVError.malformed("sample 1 of channel 1 is not a number (NaN or infinity)")) {
                _ = try WAV.decode(WAVBuilder(formatTag: 3, bits: 32).build(data: data))
            }
        }
        #expect(WAV.quantize16(.nan) == 0)
    }

    @Test("chunks before fmt and data are skipped, odd sizes padded")
    func extraChunks() throws {
        let builder = WAVBuilder(extraChunks: [("LIST", [1, 2, 3]), ("junk", [])])
        let a = try WAV.decode(builder.build(data: [0x00, 0x40, 0x00, 0xC0]))
        #expect(a.channels[0] == [0.5, -0.5])
    }

    @Test("a streaming header's data size means: to the end of the file")
    func streamingSize() throws {
        let a = try WAV.decode(WAVBuilder(declaredDataSize: 0xFFFF_FFFF).build(data: [0x00, 0x40, 0x00, 0xC0]))
        #expect(a.frameCount == 2)
    }

    @Test("broken and unsupported files are refused with the reason", arguments: [
        ("empty", [UInt8](), WAVError.notWAV),
        ("text", Array("hello, this is not audio".utf8), .notWAV),
        ("AVI", Array("RIFF\u{4}\0\0\0AVI ".utf8), .notWAV),
        ("no fmt", WAVBuilder(includeFormat: false).build(data: [0, 0]), .missingFormatChunk),
        ("no data", WAVBuilder(includeData: false).build(data: []), .missingDataChunk),
        ("truncated data", WAVBuilder(declaredDataSize: 1_000).build(data: [0, 0, 0, 0]),
         .truncated(chunk: "data", declared: 1_000, available: 4)),
        ("A-law", WAVBuilder(formatTag: 6, bits: 8).build(data: [0]), .unsupportedFormat(tag: 6)),
        ("MP3", WAVBuilder(formatTag: 0x55).build(data: [0]), .unsupportedFormat(tag: 0x55)),
        ("8-bit", WAVBuilder(bits: 8).build(data: [128]), .unsupportedBitDepth(8, float: false)),
        ("64-bit float", WAVBuilder(formatTag: 3, bits: 64).build(data: [UInt8](repeating: 0, count: 8)),
         .unsupportedBitDepth(64, float: true)),
        ("3 channels", WAVBuilder(channels: 3).build(data: [UInt8](repeating: 0, count: 6)), .unsupportedChannelCount(3)),
        ("0 channels", WAVBuilder(channels: 0, blockAlign: 0).build(data: []), .unsupportedChannelCount(0)),
        ("rate 0", WAVBuilder(rate: 0).build(data: [0, 0]), .unsupportedSampleRate(0)),
        ("bad block align", WAVBuilder(blockAlign: 3).build(data: [0, 0, 0]),
         .malformed("block align 3 does not match 1 channel(s) of 16-bit integer")),
        ("half frame", WAVBuilder().build(data: [0, 0, 0]),
         .malformed("'data' chunk of 3 bytes is not a whole number of 2-byte frames")),
    ] as [(String, [UInt8], WAVError)])
    func refusals(name: String, bytes: [UInt8], error: WAVError) {
        #expect(throws: error, "\(name)") { try WAV.decode(bytes) }
    }

    @Test("the sample rate: 8 000 to 192 000 Hz read, anything else refused with the rate named",
          arguments: [(7_999, false), (8_000, true), (44_100, true), (192_000, true), (192_001, false), (500, false), (1, false),
                      (1_000_000, false), (Int(UInt32.max), false)])
    func rateRange(rate: Int, read: Bool) throws {
        let bytes = WAVBuilder(rate: UInt32(rate)).build(data: [0, 0, 0x00, 0x40])
        if read {
            #expect(try WAV.decode(bytes).sampleRate == rate)
        } else {
            #expect(throws: WAVError.unsupportedSampleRate(rate)) { try WAV.decode(bytes) }
            #expect(WAVError.unsupportedSampleRate(rate).description == "unsupported sample rate \(rate) Hz: 8000-192000 Hz are read")
        }
        #expect(SampleRate.supported.contains(rate) == read)
    }

    @Test("channel counts, block aligns and sizes at their extremes are refused, never trap", arguments: [
        WAVBuilder(channels: 65_535), WAVBuilder(channels: 65_535, blockAlign: 65_534), WAVBuilder(channels: 2, blockAlign: 0),
        WAVBuilder(channels: 1, blockAlign: 65_535), WAVBuilder(channels: 1, bits: 65_535), WAVBuilder(channels: 1, bits: 0),
        WAVBuilder(formatTag: 3, channels: 2, bits: 0xFFFF), WAVBuilder(channels: 0, blockAlign: 0, extensibleSubformat: 1),
        WAVBuilder(declaredDataSize: 0xFFFF_FFFE), WAVBuilder(declaredDataSize: 0x7FFF_FFFF), WAVBuilder(rate: 0, declaredDataSize: 0),
    ])
    func extremes(builder: WAVBuilder) {
        let bytes = builder.build(data: [1, 2, 3, 4, 5, 6, 7, 8])
        do {
            let audio = try WAV.decode(bytes)
            // Only a plausible header reads: a streaming size runs to the end of the file.
            #expect(audio.channels.count == 1 && audio.frameCount == 4)
        } catch {
            #expect(!error.description.isEmpty)
        }
    }

    @Test("every truncation of a valid file is refused or read, never crashes")
    func everyTruncation() {
        let bytes = WAVBuilder(extraChunks: [("LIST", [1, 2, 3, 4, 5])]).build(data: [UInt8](repeating: 7, count: 64))
        for n in 0..<bytes.count {
            _ = try? WAV.decode(Array(bytes.prefix(n)))
        }
        #expect((try? WAV.decode(bytes)) != nil)
    }

    @Test("the real recordings in the corpus read")
    func corpus() throws {
        // Tests/AudioFileTests/WAVTests.swift → Tests/Recordings/…
        let tests = String(#filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(2)
            .joined(separator: "/"))
        let path = tests + "/Recordings/metrocard/metrocard-44k1.wav"
        guard let bytes = readFile(path) else {
            Issue.record("corpus file missing: \(path)"); return
        }
        let audio = try WAV.decode(bytes)
        #expect(audio.sampleRate == 44_100)
        #expect(audio.channels.count == 1)
        #expect(audio.frameCount == 132_096)
        let peak = audio.channels[0].map { abs($0) }.max() ?? 0
        #expect(abs(peak * 32_768 - 12_125) < 0.5)
    }
}
