import SwipeDecoder
import Magstripe
import AudioFile
import PosminiProtocol

/// What the fuzz targets (Fuzz/, `make fuzz`) run on each input, and what `make test` replays on
/// the seeds and on every input that once crashed (Fuzz/Regressions). Each must return for any
/// bytes: no crash, no trap, no overread.
public enum FuzzHarness {
    /// The streaming decoder: little-endian Int16 samples (or, with the third byte's top bit,
    /// raw Float32 bit patterns, NaN and infinity included: what a float device could deliver),
    /// pushed in chunks whose size comes from the first two bytes, at a rate the third picks
    /// (its low six bits: one of five common rates, or with all six set, any rate at all, the
    /// next eight bytes as a little-endian Int64: a rate outside `SampleRate.supported` must be
    /// refused with a typed error, never trap); with its 0x40 bit, a gap in the audio
    /// (`discontinuity()`) after every third chunk.
    public static func decoder(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count >= 3 else { return }
        let chunk = max(1, Int(bytes[0]) | Int(bytes[1]) << 8)
        let rates = [8_000, 22_050, 44_100, 48_000, 96_000]
        let rate: Int
        var header = 3
        if bytes[2] & 0x3F == 0x3F {
            guard bytes.count >= 11 else { return }
            var raw: UInt64 = 0
            for k in 0..<8 { raw |= UInt64(bytes[3 + k]) << UInt64(8 * k) }
            rate = Int(Int64(bitPattern: raw))
            header = 11
        } else {
            rate = rates[Int(bytes[2] & 0x3F) % rates.count]
        }
        let gaps = bytes[2] & 0x40 != 0
        let decoder: SwipeDecoder
        do {
            decoder = try SwipeDecoder(sampleRate: rate)
        } catch {
            precondition(!SampleRate.supported.contains(rate) && error.rate == rate, "a supported rate refused, or the wrong one named")
            return
        }
        precondition(SampleRate.supported.contains(rate), "an unsupported rate accepted")
        if bytes[2] & 0x80 != 0 {
            var samples = [Float](repeating: 0, count: (bytes.count - header) / 4)
            for k in samples.indices {
                let p = header + 4 * k
                samples[k] = Float(bitPattern: UInt32(bytes[p]) | UInt32(bytes[p + 1]) << 8 | UInt32(bytes[p + 2]) << 16 | UInt32(bytes[p + 3]) << 24)
            }
            push(samples.count, chunk: chunk, gaps: gaps, into: decoder) { range in
                _ = samples[range].withUnsafeBufferPointer { decoder.push($0) }
            }
        } else {
            var samples = [Int16](repeating: 0, count: (bytes.count - header) / 2)
            for k in samples.indices {
                samples[k] = Int16(bitPattern: UInt16(bytes[header + 2 * k]) | UInt16(bytes[header + 1 + 2 * k]) << 8)
            }
            push(samples.count, chunk: chunk, gaps: gaps, into: decoder) { range in
                _ = samples[range].withUnsafeBufferPointer { decoder.push($0) }
            }
        }
        _ = decoder.finish()
    }

    /// `count` samples in chunks of `chunk` (`pushRange` pushes one), a gap after every third
    /// chunk with `gaps`.
    private static func push(_ count: Int, chunk: Int, gaps: Bool, into decoder: SwipeDecoder,
                             _ pushRange: (Range<Int>) -> Void) {
        var start = 0, pushed = 0
        while start < count {
            let end = min(count, start + chunk)
            pushRange(start..<end)
            start = end
            pushed += 1
            if gaps && pushed % 3 == 0 { _ = decoder.discontinuity() }
        }
    }

    /// Track decoding (every format, both directions, with and without correction) on the
    /// input's bits, least significant first; field parsing on the input as track text.
    public static func tracks(_ bytes: UnsafeBufferPointer<UInt8>) {
        var bits: [UInt8] = []
        bits.reserveCapacity(bytes.count * 8)
        for b in bytes { for k in 0..<8 { bits.append((b >> k) & 1) } }
        let text = String(validating: bytes, as: UTF8.self)
        for format in [TrackFormat.track1, .track2, .track3] {
            _ = TrackDecoding.decodeEitherDirection(bits, format: format, correct: true)
            _ = TrackDecoding.decode(bits, format: format, direction: .forward, correct: false)
            if let text { _ = try? TrackContent.parse(text, format: format) }
        }
    }

    /// The WAV reader: audio or a typed error; what it reads is consistent and writes back, has
    /// a supported rate and one or two channels, and goes into the decoder as `decode` and
    /// `--replay` give it (each channel's first 2 048 frames: the decoder has a harness of its own).
    public static func wav(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let audio = try? WAV.decode(Array(bytes)) else { return }
        precondition(audio.channels.allSatisfy { $0.count == audio.channels.first?.count }, "channels of different lengths")
        precondition(SampleRate.supported.contains(audio.sampleRate), "a WAV at \(audio.sampleRate) Hz read")
        precondition((1...2).contains(audio.channels.count), "a WAV of \(audio.channels.count) channels read")
        _ = WAV.encode16(audio)
        for (c, samples) in audio.channels.enumerated() {
            guard let decoder = try? SwipeDecoder(sampleRate: audio.sampleRate, channel: c) else {
                preconditionFailure("the decoder refused a rate the WAV reader took")
            }
            _ = samples.prefix(2_048).withUnsafeBufferPointer { decoder.push($0) }
            _ = decoder.finish()
        }
    }

    /// The request parser: a request or a typed refusal; JSON that parses serializes and parses
    /// back to the same value.
    public static func protocolLine(_ bytes: UnsafeBufferPointer<UInt8>) {
        let line = Array(bytes)
        _ = try? Request.parse(line)
        if let value = try? JSONValue.parse(line) {
            let again = try? JSONValue.parse(Array(value.text.utf8))
            precondition(again == value, "JSON round trip changed the value")
        }
    }

    public static let targets: [(name: String, run: @Sendable (UnsafeBufferPointer<UInt8>) -> Void)] = [
        ("decoder", decoder), ("tracks", tracks), ("wav", wav), ("protocol", protocolLine),
    ]
}
