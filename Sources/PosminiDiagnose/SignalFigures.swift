/// Figures of a stretch of audio with no card in it (pure: samples in, numbers out).
struct IdleFigures: Sendable, Hashable {
    /// Mean as a fraction of full scale (signed).
    var dcOffset: Double
    /// RMS after the mean is taken out, dBFS (-200 for digital silence).
    var noiseDBFS: Double
    /// Mains hum: the stronger of 50 and 60 Hz, amplitude in dBFS, and which.
    var humDBFS: Double
    var humFrequency: Int
    /// Samples at or beyond 99.9 % of full scale.
    var clippedSamples: Int
    var peakDBFS: Double

    static func measure(_ x: [Float], rate: Int) -> IdleFigures {
        guard !x.isEmpty else {
            return IdleFigures(dcOffset: 0, noiseDBFS: -200, humDBFS: -200, humFrequency: 50, clippedSamples: 0, peakDBFS: -200)
        }
        var sum = 0.0, peak: Float = 0, clipped = 0
        for v in x {
            sum += Double(v)
            let a = abs(v)
            peak = max(peak, a)
            if a >= 0.999 { clipped += 1 }
        }
        let mean = sum / Double(x.count)
        var squares = 0.0
        for v in x { let d = Double(v) - mean; squares += d * d }
        let rms = (squares / Double(x.count)).squareRoot()
        let hum50 = toneAmplitude(x, mean: mean, frequency: 50, rate: rate)
        let hum60 = toneAmplitude(x, mean: mean, frequency: 60, rate: rate)
        return IdleFigures(dcOffset: mean, noiseDBFS: dBFS(rms), humDBFS: dBFS(max(hum50, hum60)),
                           humFrequency: hum60 > hum50 ? 60 : 50, clippedSamples: clipped, peakDBFS: dBFS(Double(peak)))
    }

    /// Amplitude of a sine at `frequency` (Goertzel over the whole stretch).
    static func toneAmplitude(_ x: [Float], mean: Double, frequency: Double, rate: Int) -> Double {
        let w = 2 * Double.pi * frequency / Double(rate)
        let coefficient = 2 * cos(w)
        var s1 = 0.0, s2 = 0.0
        for v in x {
            let s0 = Double(v) - mean + coefficient * s1 - s2
            s2 = s1
            s1 = s0
        }
        let real = s1 - s2 * cos(w), imaginary = s2 * sin(w)
        return 2 * (real * real + imaginary * imaginary).squareRoot() / Double(x.count)
    }
}

/// 20 log10 of a linear full-scale fraction; -200 for zero.
func dBFS(_ x: Double) -> Double { x > 0 ? 20 * log10(x) : -200 }

#if canImport(Glibc)
import Glibc
#endif

/// Track densities (bits per inch): the speed a sample rate allows per track.
enum TrackSpeedLimit {
    static let densities: [(track: Int, bpi: Double)] = [(1, 210), (2, 75), (3, 210)]

    /// The fastest swipe (cm/s) that still gives `samplesPerHalfCell` samples per half-cell.
    static func limit(rate: Int, bpi: Double, samplesPerHalfCell: Double = 2) -> Double {
        // Half-cells per second at v inch/s: 2 · bpi · v. Need rate / that ≥ samplesPerHalfCell.
        Double(rate) / (2 * bpi * samplesPerHalfCell) * 2.54
    }
}
