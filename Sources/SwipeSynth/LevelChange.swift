#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A change of the input's level before a swipe, as a capture meets it: the reader plugged in
/// after the capture opened, a gain stepped, a plug's click. Applied to rendered samples, so
/// the tests, the daemon's tests and the benchmark's latency figures share one definition.
public enum LevelChange: String, Sendable, CaseIterable {
    /// Digital silence until the change, then the recording's own noise.
    case silenceThenNoise
    /// 30 dB quieter until the change.
    case stepUp30dB
    /// 30 dB louder until the change (clipped at full scale).
    case stepDown30dB
    /// Digital silence, then a plug's click (4 ms of decaying full-scale ringing) ending at the
    /// change, then the noise.
    case clickThenNoise

    /// Makes the change at sample `index` of `samples` (everything before it is altered).
    public func apply(to samples: inout [Float], at index: Int, sampleRate: Int) {
        let end = min(index, samples.count)
        switch self {
        case .silenceThenNoise:
            for i in 0..<end { samples[i] = 0 }
        case .stepUp30dB:
            for i in 0..<end { samples[i] *= 0.031_62 }
        case .stepDown30dB:
            for i in 0..<end { samples[i] = max(-1, min(1, samples[i] * 31.62)) }
        case .clickThenNoise:
            for i in 0..<end { samples[i] = 0 }
            let click = min(end, sampleRate * 4 / 1_000)
            // About 2.5 kHz, decaying with a time constant of about 0.9 ms, at any rate.
            let scale = 44_100 / Double(sampleRate)
            for k in 0..<click {
                samples[end - click + k] = Float(exp(-Double(k) * scale / 40) * sin(Double(k) * scale * 0.35))
            }
        }
    }
}
