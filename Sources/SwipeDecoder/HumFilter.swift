#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Mains hum out of a segment: it is coherent over the whole segment, a swipe's pulses are not.
enum HumFilter {
    /// Harmonics of the mains frequency fitted and removed.
    static let harmonics = 6
    /// Hum below this fraction of the pulse height is left alone.
    static let worthRemoving = 0.03

    /// Fits 50 Hz and 60 Hz mains hum (fundamental and harmonics) to the whole segment by least
    /// squares, and removes whichever explains more of it from `out` (the segment less its
    /// mean), when it matters. A swipe's pulse train has little energy at exactly those
    /// frequencies over a whole segment, so the fit takes the hum and leaves the pulses. The fit
    /// runs on means of `block`-sample blocks (hum is below 400 Hz; `sums` holds the blocks'
    /// sums and is turned into their means less `mean` in place), corrected for the averaging;
    /// only the subtraction touches every sample.
    ///
    /// - Parameters:
    ///   - height: the segment's robust pulse height, which the hum is judged against.
    ///   - quietBlocks: the blocks known to precede the swipe (its noise reference).
    static func remove(from out: UnsafeMutableBufferPointer<Float>, blockSums means: UnsafeMutableBufferPointer<Double>,
                       block: Int, mean: Double, height: Float, quietBlocks: Int, sampleRate: Double) {
        let blocks = means.count
        var meanSquare = 0.0
        for b in 0..<blocks {
            means[b] = means[b] / Double(block) - mean
            meanSquare += means[b] * means[b]
        }
        meanSquare /= Double(max(1, blocks))
        // A fitted hum is at most √2 times the RMS of the block means: when that is already
        // too small to matter (as for most swipes, whose pulses cancel within a block), skip
        // the fit.
        guard (2 * meanSquare).squareRoot() > worthRemoving * Double(height) else { return }
        // Hum is stationary: whatever of it the segment holds, the noise before the swipe holds
        // too, without the swipe's own low frequencies. When the block means there stay well
        // below the level that matters, there is no hum to fit.
        // Without noise before the swipe there is nothing to tell hum from the swipe's own low
        // frequencies by: no fit (the band-pass's baseline still takes out what is slow).
        guard quietBlocks > 0 else { return }
        if quietBlocks >= 8 && quietBlocks <= blocks {
            var quietSquare = 0.0
            for b in 0..<quietBlocks { quietSquare += means[b] * means[b] }
            quietSquare /= Double(quietBlocks)
            guard (2 * quietSquare).squareRoot() > 0.5 * worthRemoving * Double(height) else { return }
        }
        var bestEnergy = 0.0
        var bestFit: [(Double, Double, Double)] = []     // (radians per sample, cos, sin)
        for mains in [50.0, 60.0] {
            var fit: [(Double, Double, Double)] = []
            var energy = 0.0
            for h in 1...harmonics {
                let w = 2 * Double.pi * mains * Double(h) / sampleRate
                guard w * Double(block) < Double.pi * 0.8 else { break }
                // Block b's mean stands for the sample at its centre, scaled by the averaging.
                let half = w * Double(block) / 2
                let gain = block > 1 ? sin(half) / (Double(block) * sin(w / 2)) : 1
                let centre = Double(block - 1) / 2
                var (a, bb) = Kernels.correlate(UnsafeBufferPointer(means), step: w * Double(block), phase: w * centre)
                a *= 2 / (Double(max(1, blocks)) * gain)
                bb *= 2 / (Double(max(1, blocks)) * gain)
                energy += a * a + bb * bb
                fit.append((w, a, bb))
            }
            if energy > bestEnergy {
                bestEnergy = energy
                bestFit = fit
            }
        }
        // Worth subtracting only when the hum stands out of the noise the fit itself picks up.
        let humAmplitude = bestEnergy.squareRoot()
        guard humAmplitude > worthRemoving * Double(height) else { return }
        for (w, a, b) in bestFit { Kernels.subtractSinusoid(out, w: w, a: a, b: b) }
    }
}
