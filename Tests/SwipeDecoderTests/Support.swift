import Magstripe
import SwipeSynth
import SwipeDecoder
import AudioFile
@_exported import TestSupport
#if canImport(Glibc)
import Glibc
#endif


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
    let decoder = try! SwipeDecoder(sampleRate: rate)
    return decoder.push(samples) + decoder.finish()
}

func decode(_ s: SwipeScenario) -> (SynthesizedSwipe, [Swipe]) {
    let swipe = SwipeSynthesizer.render(s)
    return (swipe, decode(swipe.channels[0], rate: swipe.sampleRate))
}

/// The texts of every ok track.
func okTexts(_ swipes: [Swipe]) -> [String] {
    swipes.flatMap { $0.tracks.filter(\.isOK).compactMap { $0.text?.revealed() } }
}

/// Tests/ (from this file's path).
let testsDirectory: String = {
    let parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    return parts.dropLast(2).joined(separator: "/")
}()
