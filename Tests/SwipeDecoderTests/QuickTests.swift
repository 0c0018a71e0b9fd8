import Testing
import Magstripe
import SwipeSynth
import SwipeDecoder

let track2Text = ";4111111111111111=28121010000012345678?"
let track1Text = "%B4111111111111111^CARDHOLDER/TEST A^2812101000000000000000123456?"

func scenario(_ text: String = track2Text, format: TrackFormat = .track2, speed: SpeedProfile = .constant(500),
              direction: SwipeDirection = .forward, rate: Int = 44_100, snr: Double? = 40, seed: UInt64 = 1) -> SwipeScenario {
    var audio = AudioPath(sampleRate: rate)
    audio.snr = snr
    audio.leadingSilence = 0.1
    audio.trailingSilence = 0.1
    return SwipeScenario(tracks: [try! StripeTrack(text: text, format: format)],
                         motion: Motion(speed: speed, direction: direction), audio: audio, seed: seed)
}

func decode(_ s: SwipeScenario) -> [Swipe] {
    let swipe = SwipeSynthesizer.render(s)
    let decoder = SwipeDecoder(sampleRate: swipe.sampleRate)
    return decoder.push(swipe.channels[0]) + decoder.finish()
}

@Suite("Decoder smoke")
struct QuickTests {
    @Test func basicTrack2() {
        let swipes = decode(scenario())
        #expect(swipes.count == 1)
        #expect(swipes.first?.tracks.first?.text == track2Text)
    }
}
