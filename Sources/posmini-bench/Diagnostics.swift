import SwipeSynth
import SwipeDecoder
import AudioFile
#if canImport(Glibc)
import Glibc
#endif

/// One grid case with the decoder's trace; writes the audio and ground truth to /tmp/case.*.
func inspectCase(_ c: GridCase) {
    print(c.label, "samples per half-cell", c.minSamplesPerHalfCell)
    let swipe = SwipeSynthesizer.render(c.scenario)
    print("truth: pulses \(swipe.tracks[0].pulses.count) bits \(swipe.tracks[0].bits.count) start \(swipe.swipeStart) end \(swipe.swipeEnd)")
    if let f = fopen("/tmp/case.raw", "wb") {
        let q = swipe.channels[0].map { Int16(max(-32_768, min(32_767, ($0 * 32_768).rounded()))) }
        q.withUnsafeBufferPointer { _ = fwrite($0.baseAddress, 2, $0.count, f) }
        fclose(f)
    }
    if let f = fopen("/tmp/case.truth", "w") {
        for p in swipe.tracks[0].pulses { fputs("\(p.time * Double(swipe.sampleRate)) \(p.polarity)\n", f) }
        fclose(f)
    }
    let decoder = benchDecoder(swipe.sampleRate)
    decoder.trace = { print("  " + $0) }
    for r in decoder.push(swipe.channels[0]) + decoder.finish() {
        print("swipe \(r.start)-\(r.end) problem \(r.problem?.rawValue ?? "-") tracks \(r.tracks.map { "\($0.status.code) true=\($0.text?.revealed() == c.text)" })")
    }
}

/// The bits of a recording read forward, reversed in time and resampled.
func recordingReport(_ path: String) {
    guard let audio = try? WAV.decode(readAll(path)) else { print("cannot read \(path)"); return }
    func show(_ label: String, _ x: [Float], _ rate: Int) {
        let d = benchDecoder(rate)
        for r in d.push(x) + d.finish() {
            print(label, "swipe \(r.start)-\(r.end) bits \(r.bits.count) repairs \(r.repairedCells) bridged \(r.bridgedCells) jitter \(r.quality.jitter)")
            print("  ", r.bits.map { String($0) }.joined())
        }
    }
    let x = audio.channels[0]
    show("forward", x, audio.sampleRate)
    show("reversed", x.reversed(), audio.sampleRate)
    let other = audio.sampleRate == 48_000 ? 44_100 : 48_000
    show("resampled \(other)", Resampler.resample(x, from: audio.sampleRate, to: other), other)
}
