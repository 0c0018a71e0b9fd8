import Magstripe
import SwipeSynth
import SwipeDecoder
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// Published test card numbers only.
let track1Text = "%B4111111111111111^CARDHOLDER/TEST A^2812101000000000000000123456?"
let track2Text = ";4111111111111111=28121010000012345678?"
let track3Text = ";011234567890123445=724724100000000000030300000040400099010=000000000000000000000000==1=0000000000000?"

func text(_ format: TrackFormat) -> String {
    switch format {
    case .track1: track1Text
    case .track2: track2Text
    case .track3: track3Text
    }
}

/// A scenario with a realistic audio path at a given SNR; impairments are added by the caller.
func scenario(
    _ format: TrackFormat = .track2, speed: SpeedProfile = .constant(400), direction: SwipeDirection = .forward,
    rate: Int = 44_100, snr: Double? = 35, seed: UInt64 = 11
) -> SwipeScenario {
    var audio = AudioPath(sampleRate: rate)
    audio.snr = snr
    audio.level = -14
    audio.highPass = 30
    audio.leadingSilence = 0.08
    audio.trailingSilence = 0.08
    return SwipeScenario(tracks: [try! StripeTrack(text: text(format), format: format)],
                         motion: Motion(speed: speed, direction: direction), audio: audio, seed: seed)
}

/// Decodes a rendered channel in one push.
func decode(_ samples: [Float], rate: Int) -> [Swipe] {
    let decoder = SwipeDecoder(sampleRate: rate)
    return decoder.push(samples) + decoder.finish()
}

func decode(_ s: SwipeScenario) -> (SynthesizedSwipe, [Swipe]) {
    let swipe = SwipeSynthesizer.render(s)
    return (swipe, decode(swipe.channels[0], rate: swipe.sampleRate))
}

/// The texts of every ok track.
func okTexts(_ swipes: [Swipe]) -> [String] {
    swipes.flatMap { $0.tracks.filter(\.isOK).compactMap(\.text) }
}

/// Tests/ (from this file's path).
let testsDirectory: String = {
    let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    return parts.dropLast(2).joined(separator: "/")
}()

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

/// Deterministic pseudo-random numbers for test inputs.
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
