#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Band-limited sample-rate conversion (Blackman-windowed sinc), for building test material
/// at other rates. Quality over speed: the product never resamples.
public enum Resampler {
    public static func resample(_ x: [Float], from: Int, to: Int, halfWidth: Int = 24) -> [Float] {
        let ratio = Double(to) / Double(from)
        let n = Int(Double(x.count) * ratio)
        let cutoff = min(1, ratio) * 0.45
        var out = [Float](repeating: 0, count: n)
        for i in 0..<n {
            let centre = Double(i) / ratio
            let lo = max(0, Int(centre) - halfWidth), hi = min(x.count - 1, Int(centre) + halfWidth)
            guard lo <= hi else { continue }
            var acc = 0.0, norm = 0.0
            for j in lo...hi {
                let d = Double(j) - centre
                let sinc = d == 0 ? 2 * cutoff : sin(2 * Double.pi * cutoff * d) / (Double.pi * d)
                let phase = Double.pi * d / Double(halfWidth + 1)
                let window = 0.42 + 0.5 * cos(phase) + 0.08 * cos(2 * phase)
                acc += Double(x[j]) * sinc * window
                norm += sinc * window
            }
            out[i] = Float(acc / norm)
        }
        return out
    }
}
