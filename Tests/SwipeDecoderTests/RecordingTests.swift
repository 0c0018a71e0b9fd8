import Testing
import SwipeSynth
import SwipeDecoder
import AudioFile
import FoundationEssentials

/// Real head recordings (MetroCard: F2F, not ISO characters). Expected output is stored beside
/// each WAV; every reading of the same swipe must give the same bits.
@Suite("Real recordings")
struct RecordingTests {
    struct Expected: Decodable {
        struct SwipeBits: Decodable {
            var bits: String
            var repaired: Int
            var bridged: Int
        }
        var swipes: [SwipeBits]
    }

    static let clean = ["metrocard-ezpay-44k1", "metrocard-nyu-48k"]

    func load(_ name: String) throws -> (PCMAudio, Expected) {
        let base = testsDirectory + "/Recordings/metrocard/" + name
        let wav = try #require(readFile(base + ".wav"), "missing \(base).wav")
        let json = try #require(readFile(base + ".json"), "missing \(base).json")
        return (try WAV.decode(wav), try JSONDecoder().decode(Expected.self, from: Data(json)))
    }

    func bitString(_ swipe: Swipe) -> String { swipe.bits.map { String($0) }.joined() }

    /// Clocking zeros at either end depend on where the head met the stripe's edge.
    func core(_ s: String) -> Substring {
        let trimmed = s.drop { $0 == "0" }
        return trimmed.prefix(trimmed.count - trimmed.reversed().prefix { $0 == "0" }.count)
    }

    @Test("the stored bits come out, with no cell the clock could not classify", arguments: clean)
    func expectedBits(name: String) throws {
        let (audio, expected) = try load(name)
        let swipes = decode(audio.channels[0], rate: audio.sampleRate)
        #expect(swipes.count == expected.swipes.count)
        for (swipe, want) in zip(swipes, expected.swipes) {
            #expect(bitString(swipe) == want.bits)
            #expect(swipe.repairedCells == 0 && want.repaired == 0)
            #expect(swipe.bridgedCells == 0 && want.bridged == 0)
        }
    }

    @Test("played backwards, resampled and re-chunked, the same bits", arguments: clean)
    func sameBitsEveryWay(name: String) throws {
        let (audio, _) = try load(name)
        let x = audio.channels[0]
        let forward = try #require(decode(x, rate: audio.sampleRate).first)
        let reference = core(bitString(forward))
        #expect(reference.count > 200)

        let reversed = try #require(decode(x.reversed(), rate: audio.sampleRate).first)
        #expect(core(String(bitString(reversed).reversed())) == reference)

        let other = audio.sampleRate == 48_000 ? 44_100 : 48_000
        let resampled = try #require(decode(Resampler.resample(x, from: audio.sampleRate, to: other), rate: other).first)
        #expect(core(bitString(resampled)) == reference)

        let decoder = try! SwipeDecoder(sampleRate: audio.sampleRate)
        var chunked: [Swipe] = []
        var offset = 0
        var size = 1
        while offset < x.count {
            let n = min(size, x.count - offset)
            chunked += x[offset..<(offset + n)].withContiguousStorageIfAvailable { decoder.push($0) } ?? []
            offset += n
            size = size % 997 + 13
        }
        chunked += decoder.finish()
        #expect(chunked.map(bitString) == [bitString(forward)])
    }

    @Test("the card's record repeats on the stripe, and both copies agree", arguments: clean)
    func recordRepeats(name: String) throws {
        let (audio, _) = try load(name)
        let bits = try #require(decode(audio.channels[0], rate: audio.sampleRate).first).bits
        // The repeat distance is the lag with the best agreement; past the first few bits (the
        // lead-in before the first record) the copies must agree exactly.
        let lags = 90..<170
        let agreement = lags.map { lag in (0..<(bits.count - lag)).filter { bits[$0] == bits[$0 + lag] }.count * 1_000 / (bits.count - lag) }
        let lag = lags.lowerBound + agreement.indices.max { agreement[$0] < agreement[$1] }!
        let mismatches = (4..<(bits.count - lag)).filter { bits[$0] != bits[$0 + lag] }
        #expect(mismatches.isEmpty, "record repeats at \(lag) bits, mismatches at \(mismatches)")
        #expect(bits.count - lag > 100)
    }

    @Test("every corpus recording decodes, with at most a rare noise skip",
          arguments: ["metrocard-44k1", "metrocard3rd-44k1", "metrocardat-44k1", "metrocard-unlimited-16k", "metrocard-mix-48k"])
    func otherRecordings(name: String) throws {
        let wav = try #require(readFile(testsDirectory + "/Recordings/metrocard/" + name + ".wav"))
        let audio = try WAV.decode(wav)
        let swipes = decode(audio.channels[0], rate: audio.sampleRate)
        #expect(!swipes.isEmpty)
        for swipe in swipes {
            #expect(swipe.repairedCells * 100 <= swipe.bits.count)
            #expect(swipe.bits.count > 60)
            // Not ISO: nothing may read as a track.
            #expect(swipe.readTracks.isEmpty)
        }
    }
}

