import Testing
import AudioFile
import Magstripe
import SwipeSynth
import FoundationEssentials
import TestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `posminid decode` end to end: the built executable, real files, exit codes and output.
extension ProcessSuites {
    @Suite("posminid decode")
    struct DecodeCommandTests: CommandTesting {

        @Test("JSON lines, one per swipe (class SWIPE), masked and without clear data, then one for the file (class FILE)")
        func jsonOutput() throws {
            let file = try swipeFile([(Self.track2, .track2), (Self.track1, .track1)])
            let result = try run(["decode", "--json", file])
            #expect(result.status == 0)
            var lines = result.stdout.split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines.last == "{\"class\":\"FILE\",\"file\":\"\(file)\",\"swipes\":2}")
            lines.removeLast()
            #expect(lines.allSatisfy { $0.hasPrefix("{\"class\":\"SWIPE\",") }, "\(lines)")
            struct Line: Decodable {
                struct Track: Decodable { var track: Int?; var status: String; var masked: String?; var data: String? }
                var file: String; var channel: Int; var start_s: Double; var end_s: Double; var direction: String?
                var tracks: [Track]
            }
            let decoded = try lines.map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
            #expect(decoded.map { $0.tracks.first?.track } == [2, 1])
            #expect(decoded.allSatisfy { $0.tracks.first?.status == "ok" && $0.tracks.first?.data == nil && $0.direction == "forward" })
            #expect(decoded[0].tracks[0].masked == ";411111******1111=2812101*************?")
            #expect(decoded[0].start_s < decoded[0].end_s && decoded[0].end_s < decoded[1].start_s)
            #expect(!result.stdout.contains("4111111111111111"))
            #expect(!result.stdout.contains("12345678"))
            #expect(result.stderr.isEmpty)
        }

        @Test("--reveal prints the data and warns on stderr")
        func reveal() throws {
            let file = try swipeFile([(Self.track2, .track2)])
            let result = try run(["decode", "--json", "--reveal", file])
            #expect(result.status == 0)
            #expect(result.stdout.contains("\"data\":\"\(Self.track2)\""))
            #expect(result.stderr.contains("clear card data"))
            let text = try run(["decode", file])
            #expect(text.status == 0)
            #expect(text.stdout.contains("Track 2 (assumed): ok"), "30 cm/s is plausible at either density: Track 2 is assumed, and said")
            #expect(!text.stdout.contains("4111111111111111"))
        }

        @Test("a two-head reader: both channels read")
        func stereo() throws {
            let file = try swipeFile([(Self.track1, .track1), (Self.track2, .track2)], stereo: true)
            let result = try run(["decode", "--json", file])
            #expect(result.status == 0)
            #expect(result.stdout.contains("\"channel\":0") && result.stdout.contains("\"channel\":1"))
            #expect(result.stdout.split(separator: "\n").count == 3, "two swipes and the file")
        }

        @Test("silence gives no swipe and exit 1")
        func silence() throws {
            let path = try temporaryDirectory() + "/silence.wav"
            write(WAV.encode16(PCMAudio(sampleRate: 44_100, channels: [[Float](repeating: 0, count: 44_100)])), to: path)
            let json = try run(["decode", "--json", path])
            #expect(json.status == 1)
            #expect(json.stdout == "{\"class\":\"FILE\",\"file\":\"\(path)\",\"swipes\":0}\n", "one object for the file, none for a swipe")
            let text = try run(["decode", path])
            #expect(text.status == 1)
            #expect(text.stdout.contains("no swipe found"))
        }

        @Test("broken input: exit 2 and a message naming the file and the fault", arguments: [
            ("not-a-wav.wav", Array("hello, I am text".utf8), "not a WAV file"),
            ("truncated.wav", Array(WAV.encode16(PCMAudio(sampleRate: 8_000, channels: [[Float](repeating: 0.1, count: 800)])).prefix(300)),
             "truncated"),
            ("alaw.wav", [0x52, 0x49, 0x46, 0x46, 38, 0, 0, 0, 0x57, 0x41, 0x56, 0x45, 0x66, 0x6D, 0x74, 0x20, 16, 0, 0, 0,
                          6, 0, 1, 0, 0x40, 0x1F, 0, 0, 0x40, 0x1F, 0, 0, 1, 0, 8, 0, 0x64, 0x61, 0x74, 0x61, 2, 0, 0, 0, 0, 0],
             "unsupported WAV encoding"),
        ] as [(String, [UInt8], String)])
        func brokenInput(name: String, bytes: [UInt8], message: String) throws {
            let path = try temporaryDirectory() + "/" + name
            write(bytes, to: path)
            let result = try run(["decode", path])
            #expect(result.status == 2)
            #expect(result.stderr.contains(path))
            #expect(result.stderr.contains(message), "\(result.stderr)")
        }

        @Test("a WAV at a rate outside 8-192 kHz: exit 2 and a message naming the rate, never a trap (500 Hz used to end in SIGILL, 132)",
              arguments: [500, 7_999, 192_001, 0, 1, 4_294_967_295] as [UInt32])
        func unsupportedRate(rate: UInt32) throws {
            let path = try wavClaiming(rate: rate)
            let result = try run(["decode", path])
            #expect(result.status == 2, "exit \(result.status): \(result.stderr)")
            #expect(result.stderr.contains(path))
            #expect(result.stderr.contains("unsupported sample rate \(rate) Hz"), "\(result.stderr)")
            #expect(result.stderr.contains("8000-192000 Hz"), "\(result.stderr)")
        }

        @Test("a WAV of 0, 3 or 65 535 channels: exit 2 and a message naming the count, never a trap",
              arguments: [0, 3, 65_535] as [UInt16])
        func unsupportedChannels(channels: UInt16) throws {
            let path = try wavClaiming(rate: 44_100, channels: channels)
            let result = try run(["decode", path])
            #expect(result.status == 2, "exit \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("unsupported channel count \(channels)"), "\(result.stderr)")
        }

        @Test("the edges of the range decode: a swipe recorded at 8 kHz and at 192 kHz", arguments: [8_000, 192_000])
        func rangeEdges(rate: Int) throws {
            // Slow enough for two samples per half-cell at 8 kHz (the decoder's floor).
            let file = try swipeFile([(Self.track2, .track2)], rate: rate, speed: 150)
            let result = try run(["decode", "--json", file])
            #expect(result.status == 0, "exit \(result.status): \(result.stderr)")
            #expect(result.stdout.contains("\"masked\":\";411111******1111=2812101*************?\""), "\(result.stdout)")
        }

        @Test("a missing file: exit 2, named")
        func missingFile() throws {
            let result = try run(["decode", "/nonexistent/swipe.wav"])
            #expect(result.status == 2)
            #expect(result.stderr.contains("/nonexistent/swipe.wav"))
            #expect(result.stderr.contains("No such file"))
        }
}
}
